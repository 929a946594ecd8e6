// Eigendecomposition of a small symmetric matrix by cyclic Jacobi rotations: simple, stable and
// accurate for the 1..60-dimensional covariance matrices of a device's tags.

export interface Eigen {
  /** Eigenvalues, largest first. */
  values: number[];
  /** Eigenvectors as columns of an n×n row-major matrix, in the order of `values`. */
  vectors: number[];
}

/** `a` is n×n row-major and symmetric; it is not modified. */
export function symmetricEigen(a: ArrayLike<number>, n: number, maxSweeps = 30): Eigen {
  const m = Array.from(a);
  const v = new Array<number>(n * n).fill(0);
  for (let i = 0; i < n; i++) v[i * n + i] = 1;
  let scale = 0;
  for (let i = 0; i < n * n; i++) scale += (m[i] as number) ** 2;
  const tolerance = 1e-22 * scale;
  for (let sweep = 0; sweep < maxSweeps; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += (m[p * n + q] as number) ** 2;
    if (off <= tolerance) break;
    for (let p = 0; p < n; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = m[p * n + q] as number;
        if (apq === 0) continue;
        const app = m[p * n + p] as number;
        const aqq = m[q * n + q] as number;
        const theta = (aqq - app) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < n; k++) {
          // columns p and q of m
          const mkp = m[k * n + p] as number;
          const mkq = m[k * n + q] as number;
          m[k * n + p] = c * mkp - s * mkq;
          m[k * n + q] = s * mkp + c * mkq;
        }
        for (let k = 0; k < n; k++) {
          // rows p and q of m
          const mpk = m[p * n + k] as number;
          const mqk = m[q * n + k] as number;
          m[p * n + k] = c * mpk - s * mqk;
          m[q * n + k] = s * mpk + c * mqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = v[k * n + p] as number;
          const vkq = v[k * n + q] as number;
          v[k * n + p] = c * vkp - s * vkq;
          v[k * n + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((i, j) => (m[j * n + j] as number) - (m[i * n + i] as number));
  const values = order.map((i) => m[i * n + i] as number);
  const vectors = new Array<number>(n * n);
  for (let col = 0; col < n; col++) {
    const src = order[col] as number;
    for (let row = 0; row < n; row++) vectors[row * n + col] = v[row * n + src] as number;
  }
  return { values, vectors };
}

/* Training steps of batched MLP ensembles, member by member: the hot loop of train/trainer.py for
 * ReLU MLPs read out one logit per head, with the logistic loss, SGD (momentum) or Adam.
 *
 * `train_steps` runs steps [s0, s1) of a block of minibatch indices for every active member. A member's
 * weights, gradients and optimiser state stay in the core's caches for all those steps, instead of
 * being streamed through memory once per operation per step as the batched-matmul program does. Per
 * step: gather the member's rows, forward (bias and ReLU fused into the matmul's store), each row read
 * out by its block's head, the logistic loss and its gradient with the row's loss weight, backward
 * (ReLU' fused into the input gradient's store), then the optimiser on every parameter, exactly as
 * train/optim.py (weight decay added to the gradient; untrained heads get a zero gradient and are
 * still decayed and moved by their optimiser state). The products are register-blocked micro-kernels
 * over GCC vector types (AVX-512 or AVX2 with -march=native; any target without). Members are split
 * over threads; each member's result does not depend on the others. tests/train/test_train_kernel.py checks
 * it against the torch path. */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__AVX__)
#include <immintrin.h>
#elif defined(__SSE__)
#include <xmmintrin.h>
#endif

#if defined(__AVX512F__)
#define VL 16
#define NV 4 /* vectors per tile: 4 x 64 columns in 16 of the 32 registers */
#else
#define VL 8
#define NV 2
#endif
#define MR 4 /* rows per tile */

typedef float vf __attribute__((vector_size(VL * 4)));
typedef float vfu __attribute__((vector_size(VL * 4), aligned(4)));
typedef int32_t vi __attribute__((vector_size(VL * 4)));

static inline vf ld(const float* p) { return *(const vfu*)p; }
static inline void st(float* p, vf v) { *(vfu*)p = v; }
static inline vf splat(float a) { return (vf){0} + a; }

/* C (m x n tile) = sum_p A(i, p) B(p, j) [+ bias(j)], A(i, p) = A[i * ars + p * acs], B and C row-major.
 * Then ReLU (relu), or zero where mask(i, j) <= 0 (the ReLU' of the layer whose input this is). */
#define TILE(NAME, ROWS, VECS)                                                                                  \
  static inline void NAME(int K, const float* A, long ars, long acs, const float* B, long ldb, float* C, long ldc, \
                          const float* bias, const float* mask, long ldm, int relu) {                          \
    vf acc[ROWS][VECS];                                                                                         \
    for (int r = 0; r < ROWS; r++)                                                                              \
      for (int v = 0; v < VECS; v++) acc[r][v] = bias ? ld(bias + v * VL) : (vf){0};                           \
    for (int p = 0; p < K; p++) {                                                                               \
      vf b[VECS];                                                                                               \
      for (int v = 0; v < VECS; v++) b[v] = ld(B + p * ldb + v * VL);                                           \
      for (int r = 0; r < ROWS; r++) {                                                                          \
        const float a = A[r * ars + p * acs];                                                                   \
        for (int v = 0; v < VECS; v++) acc[r][v] += a * b[v];                                                   \
      }                                                                                                         \
    }                                                                                                           \
    const vf zero = {0};                                                                                        \
    for (int r = 0; r < ROWS; r++)                                                                              \
      for (int v = 0; v < VECS; v++) {                                                                          \
        vf x = acc[r][v];                                                                                       \
        if (relu) x = (vf)((vi)x & (x > zero));                                                                 \
        if (mask) x = (vf)((vi)x & (ld(mask + r * ldm + v * VL) > zero));                                       \
        st(C + r * ldc + v * VL, x);                                                                            \
      }                                                                                                         \
  }
TILE(tile_main, MR, NV)
TILE(tile_row, 1, NV)
TILE(tile_col, MR, 1)
TILE(tile_one, 1, 1)

/* C (M x N) = A B as above; N a multiple of VL. */
static void gemm(int M, int N, int K, const float* A, long ars, long acs, const float* B, long ldb, float* C, long ldc,
                 const float* bias, const float* mask, long ldm, int relu) {
  int j = 0;
  for (; j + NV * VL <= N; j += NV * VL) {
    int i = 0;
    for (; i + MR <= M; i += MR)
      tile_main(K, A + i * ars, ars, acs, B + j, ldb, C + i * ldc + j, ldc, bias ? bias + j : 0, mask ? mask + i * ldm + j : 0, ldm, relu);
    for (; i < M; i++)
      tile_row(K, A + i * ars, ars, acs, B + j, ldb, C + i * ldc + j, ldc, bias ? bias + j : 0, mask ? mask + i * ldm + j : 0, ldm, relu);
  }
  for (; j < N; j += VL) {
    int i = 0;
    for (; i + MR <= M; i += MR)
      tile_col(K, A + i * ars, ars, acs, B + j, ldb, C + i * ldc + j, ldc, bias ? bias + j : 0, mask ? mask + i * ldm + j : 0, ldm, relu);
    for (; i < M; i++)
      tile_one(K, A + i * ars, ars, acs, B + j, ldb, C + i * ldc + j, ldc, bias ? bias + j : 0, mask ? mask + i * ldm + j : 0, ldm, relu);
  }
}

/* T = M^T for a square n x n M, n a multiple of 8, in 8 x 8 blocks that stay in registers */
static void transpose(int n, const float* M, float* T) {
  for (int a0 = 0; a0 < n; a0 += 8)
    for (int c0 = 0; c0 < n; c0 += 8) {
#if defined(__AVX__)
      __m256 r[8], t[8], u[8];
      for (int a = 0; a < 8; a++) r[a] = _mm256_loadu_ps(M + (long)(a0 + a) * n + c0);
      for (int a = 0; a < 8; a += 2) {
        t[a] = _mm256_unpacklo_ps(r[a], r[a + 1]);
        t[a + 1] = _mm256_unpackhi_ps(r[a], r[a + 1]);
      }
      for (int h = 0; h < 8; h += 4) {
        u[h] = _mm256_shuffle_ps(t[h], t[h + 2], 0x44);
        u[h + 1] = _mm256_shuffle_ps(t[h], t[h + 2], 0xEE);
        u[h + 2] = _mm256_shuffle_ps(t[h + 1], t[h + 3], 0x44);
        u[h + 3] = _mm256_shuffle_ps(t[h + 1], t[h + 3], 0xEE);
      }
      for (int c = 0; c < 4; c++) {
        _mm256_storeu_ps(T + (long)(c0 + c) * n + a0, _mm256_permute2f128_ps(u[c], u[c + 4], 0x20));
        _mm256_storeu_ps(T + (long)(c0 + c + 4) * n + a0, _mm256_permute2f128_ps(u[c], u[c + 4], 0x31));
      }
#else
      float blk[8][8];
      for (int a = 0; a < 8; a++)
        for (int c = 0; c < 8; c++) blk[c][a] = M[(long)(a0 + a) * n + c0 + c];
      for (int c = 0; c < 8; c++) memcpy(T + (long)(c0 + c) * n + a0, blk[c], sizeof blk[c]);
#endif
    }
}

static inline float hsum(vf v) {
  float s = 0;
  for (int i = 0; i < VL; i++) s += v[i];
  return s;
}

/* torch's softplus (beta 1, threshold 20) and sigmoid */
static inline float softplus(float x) { return x > 20.0f ? x : log1pf(expf(x)); }
static inline float sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

typedef struct {
  int n_members, depth, n_in, width, n_heads, rows, batch, opt;
  float* const* params;   /* 2 * (depth + 1) tensors, each (N, fan_in or 1, fan_out) */
  float* const* state_a;  /* SGD's momentum buffers or Adam's first moments, same shapes (NULL: plain SGD) */
  float* const* state_b;  /* Adam's second moments */
  const float *xs, *ys;   /* (P, n_in), (P,) */
  const int64_t* idx;     /* (N, idx_steps, rows) */
  int idx_steps, s0, s1;
  const int* block_heads; /* rows / batch heads: block e of rows is read out by head block_heads[e] */
  const float* rowweight; /* (rows,) loss weight / batch size */
  float lr, momentum, wd, b1, b2, eps;
  long t0;                /* Adam's step count before s0 */
  const uint8_t* active;  /* (N,) or NULL: members to train */
  float* loss;            /* (N, n_heads): += per-head sums of the loss */
  int ftz;
  int m0, m1;             /* this thread's members */
  int status;
} Job;

static long numel(const Job* j, int k) { /* per-member size of params[k] */
  const int l = k / 2, fan_in = l == 0 ? j->n_in : j->width, fan_out = l == j->depth ? j->n_heads : j->width;
  return (long)(k % 2 ? 1 : fan_in) * fan_out;
}

static void update(const Job* j, float* p, float* a, float* b, const float* g, long n, float lr_t, float bc2) {
  const float wd = j->wd, mom = j->momentum, b1 = j->b1, b2 = j->b2, lr = j->lr;
  /* lr_t m / (sqrt(v) / bc2 + eps) with one division: (lr_t bc2) m / (sqrt(v) + eps bc2) */
  const float step = lr_t * bc2, eps_b = j->eps * bc2;
  long i = 0;
  if (j->opt == 0) {
    for (; i + VL <= n; i += VL) {
      vf gv = ld(g + i) + wd * ld(p + i);
      if (a) { gv = mom * ld(a + i) + gv; st(a + i, gv); }
      st(p + i, ld(p + i) - lr * gv);
    }
    for (; i < n; i++) {
      float gs = g[i] + wd * p[i];
      if (a) { gs = mom * a[i] + gs; a[i] = gs; }
      p[i] -= lr * gs;
    }
  } else {
    for (; i + VL <= n; i += VL) {
      const vf gv = ld(g + i) + wd * ld(p + i);
      const vf mv = ld(a + i) + (1.0f - b1) * (gv - ld(a + i));
      const vf vv = b2 * ld(b + i) + (1.0f - b2) * gv * gv;
      st(a + i, mv);
      st(b + i, vv);
      vf s = {0};
      for (int q = 0; q < VL; q++) s[q] = sqrtf(vv[q]);
      st(p + i, ld(p + i) - step * mv / (s + eps_b));
    }
    for (; i < n; i++) {
      const float gs = g[i] + wd * p[i];
      a[i] = a[i] + (1.0f - b1) * (gs - a[i]);
      b[i] = b2 * b[i] + (1.0f - b2) * gs * gs;
      p[i] -= step * a[i] / (sqrtf(b[i]) + eps_b);
    }
  }
}

static void* run(void* arg) {
  Job* j = arg;
#if defined(__SSE__)
  const unsigned csr = _mm_getcsr();
  if (j->ftz) _mm_setcsr(csr | 0x8040); /* flush denormals, as the torch path's run_phases asks */
#endif
  const int D = j->depth, W = j->width, n_in = j->n_in, H = j->n_heads, R = j->rows, E = R / j->batch, np = 2 * (D + 1);
  long gsize = 0, off[64];
  for (int k = 0; k < np; k++) { off[k] = gsize; gsize += (numel(j, k) + VL - 1) / VL * VL; }
  const long xw = (n_in + VL - 1) / VL * VL;
  float* buf = aligned_alloc(64, sizeof(float) * (gsize + (long)R * xw + (long)D * R * W + 2L * R * W + (long)D * W * W + (long)E * W + 2L * R + W + 64));
  if (!buf) { j->status = 1; return 0; }
  float *grad = buf, *X = grad + gsize, *act = X + (long)R * xw, *delta = act + (long)D * R * W, *delta2 = delta + (long)R * W;
  float *WT = delta2 + (long)R * W, *wcol = WT + (long)D * W * W, *y = wcol + (long)E * W, *dz = y + R, *gcol = dz + R;
  for (int m = j->m0; m < j->m1; m++) {
    if (j->active && !j->active[m]) continue;
    float *P[64], *A[64], *B[64];
    for (int k = 0; k < np; k++) {
      P[k] = j->params[k] + m * numel(j, k);
      A[k] = j->state_a ? j->state_a[k] + m * numel(j, k) : 0;
      B[k] = j->state_b ? j->state_b[k] + m * numel(j, k) : 0;
    }
    const float *Wh = P[2 * D], *bh = P[2 * D + 1];
    for (int s = j->s0; s < j->s1; s++) {
      const int64_t* rows = j->idx + ((long)m * j->idx_steps + s) * R;
      for (int r = 0; r < R; r++) {
        memcpy(X + r * n_in, j->xs + rows[r] * n_in, sizeof(float) * n_in);
        y[r] = j->ys[rows[r]];
      }
      for (int l = 1; l < D; l++) transpose(W, P[2 * l], WT + (long)l * W * W); /* for the input gradient delta W_l^T */
      /* forward */
      gemm(R, W, n_in, X, n_in, 1, P[0], W, act, W, P[1], 0, 0, 1);
      for (int l = 1; l < D; l++)
        gemm(R, W, W, act + (long)(l - 1) * R * W, W, 1, P[2 * l], W, act + (long)l * R * W, W, P[2 * l + 1], 0, 0, 1);
      const float* last = act + (long)(D - 1) * R * W;
      for (int e = 0; e < E; e++)
        for (int c = 0; c < W; c++) wcol[e * W + c] = Wh[(long)c * H + j->block_heads[e]];
      float* loss = j->loss + (long)m * H;
      for (int r = 0; r < R; r++) {
        const int e = r / j->batch, h = j->block_heads[e];
        vf acc = {0};
        for (int c = 0; c < W; c += VL) acc += ld(last + r * W + c) * ld(wcol + e * W + c);
        const float z = hsum(acc) + bh[h], yz = y[r] * z;
        loss[h] += softplus(-yz);
        dz[r] = sigmoid(-yz) * y[r] * -j->rowweight[r];
      }
      /* backward: the heads */
      memset(grad, 0, sizeof(float) * gsize);
      float *gWh = grad + off[2 * D], *gbh = grad + off[2 * D + 1];
      for (int e = 0; e < E; e++) {
        const int h = j->block_heads[e];
        for (int c = 0; c < W; c += VL) st(gcol + c, (vf){0});
        float gb = 0;
        for (int r = e * j->batch; r < (e + 1) * j->batch; r++) {
          const vf d = splat(dz[r]);
          gb += dz[r];
          for (int c = 0; c < W; c += VL) {
            const vf hv = ld(last + r * W + c);
            st(gcol + c, ld(gcol + c) + hv * d);
            st(delta + r * W + c, (vf)((vi)(d * ld(wcol + e * W + c)) & (hv > (vf){0})));
          }
        }
        for (int c = 0; c < W; c++) gWh[(long)c * H + h] = gcol[c];
        gbh[h] = gb;
      }
      /* the trunk, last layer first */
      float *cur = delta, *next = delta2;
      for (int l = D - 1; l >= 0; l--) {
        const float* in = l == 0 ? X : act + (long)(l - 1) * R * W;
        const int fan_in = l == 0 ? n_in : W;
        gemm(fan_in, W, R, in, 1, fan_in, cur, W, grad + off[2 * l], W, 0, 0, 0, 0);
        float* gb = grad + off[2 * l + 1];
        for (int c = 0; c < W; c += VL) {
          vf acc = {0};
          for (int r = 0; r < R; r++) acc += ld(cur + r * W + c);
          st(gb + c, acc);
        }
        if (l > 0) {
          gemm(R, W, W, cur, W, 1, WT + (long)l * W * W, W, next, W, 0, in, W, 0);
          float* t = cur; cur = next; next = t;
        }
      }
      /* the optimiser */
      const long t = j->t0 + s - j->s0 + 1;
      const float lr_t = (float)(j->lr / (1.0 - pow(j->b1, (double)t))), bc2 = (float)sqrt(1.0 - pow(j->b2, (double)t));
      for (int k = 0; k < np; k++) update(j, P[k], A[k], B[k], grad + off[k], numel(j, k), lr_t, bc2);
    }
  }
  free(buf);
#if defined(__SSE__)
  _mm_setcsr(csr);
#endif
  return 0;
}

/* Returns 0 on success, 1 when out of memory, 2 for shapes it does not compute. */
int train_steps(int n_members, int n_threads, int depth, int n_in, int width, int n_heads, float* const* params,
                float* const* state_a, float* const* state_b, const float* xs, const float* ys, const int64_t* idx,
                int idx_steps, int s0, int s1, int rows, int batch, const int* block_heads, const float* rowweight, int opt,
                float lr, float momentum, float wd, float b1, float b2, float eps, long t0, const uint8_t* active,
                float* loss, int ftz) {
  if (width % VL || depth < 1 || 2 * (depth + 1) > 64 || batch < 1 || rows % batch) return 2;
  if (n_threads < 1) n_threads = 1;
  if (n_threads > n_members) n_threads = n_members > 0 ? n_members : 1;
  Job jobs[64];
  if (n_threads > 64) n_threads = 64;
  pthread_t tid[64];
  for (int i = 0; i < n_threads; i++) {
    jobs[i] = (Job){n_members, depth, n_in, width, n_heads, rows, batch, opt, params, state_a, state_b, xs, ys, idx,
                    idx_steps, s0, s1, block_heads, rowweight, lr, momentum, wd, b1, b2, eps, t0, active, loss, ftz,
                    (int)((long)n_members * i / n_threads), (int)((long)n_members * (i + 1) / n_threads), 0};
  }
  int created[64] = {0};
  for (int i = 1; i < n_threads; i++) created[i] = pthread_create(&tid[i], 0, run, &jobs[i]) == 0;
  run(&jobs[0]);
  int status = jobs[0].status;
  for (int i = 1; i < n_threads; i++) {
    if (created[i]) pthread_join(tid[i], 0);
    else run(&jobs[i]); /* no thread: do its share here */
    if (jobs[i].status) status = jobs[i].status;
  }
  return status;
}

/* ---- checkpoint evaluation: the trunk and the policy logit of every member on shared inputs ----------
 * `eval_forward` computes, per member, the last hidden layer on every row of x (M, n_in) in tiles of
 * EROWS rows that stay in cache, and from it the logit of one head, as judge.cells.ProbeEvaluator
 * does in torch: each product is the sum over the inner index in order (fused multiply-adds from 0),
 * then the bias, then the ReLU, so that the values are the ones torch's batched matmuls give
 * (tests/train/test_train_kernel.py checks them bit for bit). The hidden layer of the first `keep` rows is
 * stored (N, keep, width) for the linear probes; the rest never leaves the cache. */
#define EROWS 32

static void* eval_run(void* arg);

typedef struct {
  int depth, n_in, width, n_heads, M, head, keep;
  float* const* params;
  const float* x;
  float *logits, *hidden;
  int m0, m1, status;
} EvalJob;

/* C (rows x W) = ReLU(A (rows x K) B (K x W) + bias): the register-blocked sum over p first (each element
 * summed in order from 0, as torch's matmul does), then the bias, then the ReLU, as torch's bmm, add_, relu_ */
static void eval_layer(int rows, int K, int W, const float* A, const float* B, const float* bias, float* C) {
  gemm(rows, W, K, A, K, 1, B, W, C, W, 0, 0, 0, 0);
  for (int i = 0; i < rows; i++)
    for (int j = 0; j < W; j += VL) {
      const vf acc = ld(C + (long)i * W + j) + ld(bias + j);
      st(C + (long)i * W + j, (vf)((vi)acc & (acc > (vf){0})));
    }
}

static void* eval_run(void* arg) {
  EvalJob* j = arg;
  const int D = j->depth, W = j->width, H = j->n_heads;
  float* buf = aligned_alloc(64, sizeof(float) * (2L * EROWS * W + W + 16));
  if (!buf) { j->status = 1; return 0; }
  float *h0 = buf, *h1 = h0 + (long)EROWS * W, *wcol = h1 + (long)EROWS * W;
  for (int m = j->m0; m < j->m1; m++) {
    const float* P[64];
    for (int k = 0; k < 2 * (D + 1); k++) {
      const int l = k / 2, fan_in = l == 0 ? j->n_in : W, fan_out = l == D ? H : W;
      P[k] = j->params[k] + (long)m * (k % 2 ? 1 : fan_in) * fan_out;
    }
    for (int c = 0; c < W; c++) wcol[c] = P[2 * D][(long)c * H + j->head];
    const float bh = P[2 * D + 1][j->head];
    for (int r0 = 0; r0 < j->M; r0 += EROWS) {
      const int rows = j->M - r0 < EROWS ? j->M - r0 : EROWS;
      float *in = h0, *out = h1;
      eval_layer(rows, j->n_in, W, j->x + (long)r0 * j->n_in, P[0], P[1], in);
      for (int l = 1; l < D; l++) {
        eval_layer(rows, W, W, in, P[2 * l], P[2 * l + 1], out);
        float* t = in; in = out; out = t;
      }
      for (int r = 0; r < rows; r++) {
        float z = 0;
        for (int c = 0; c < W; c++) z = fmaf(in[(long)r * W + c], wcol[c], z); /* in order, as the matmul sums */
        j->logits[(long)m * j->M + r0 + r] = z + bh;
        if (r0 + r < j->keep) memcpy(j->hidden + ((long)m * j->keep + r0 + r) * W, in + (long)r * W, sizeof(float) * W);
      }
    }
  }
  free(buf);
  return 0;
}

/* Returns 0 on success, 1 when out of memory, 2 for shapes it does not compute. */
int eval_forward(int n_members, int n_threads, int depth, int n_in, int width, int n_heads, float* const* params,
                 const float* x, int M, int head, float* logits, int keep, float* hidden) {
  if (width % VL || depth < 1 || 2 * (depth + 1) > 64 || head < 0 || head >= n_heads || keep > M) return 2;
  if (n_threads < 1) n_threads = 1;
  if (n_threads > n_members) n_threads = n_members > 0 ? n_members : 1;
  if (n_threads > 64) n_threads = 64;
  EvalJob jobs[64];
  pthread_t tid[64];
  for (int i = 0; i < n_threads; i++)
    jobs[i] = (EvalJob){depth, n_in, width, n_heads, M, head, keep, params, x, logits, hidden,
                        (int)((long)n_members * i / n_threads), (int)((long)n_members * (i + 1) / n_threads), 0};
  int created[64] = {0};
  for (int i = 1; i < n_threads; i++) created[i] = pthread_create(&tid[i], 0, eval_run, &jobs[i]) == 0;
  eval_run(&jobs[0]);
  int status = jobs[0].status;
  for (int i = 1; i < n_threads; i++) {
    if (created[i]) pthread_join(tid[i], 0);
    else eval_run(&jobs[i]);
    if (jobs[i].status) status = jobs[i].status;
  }
  return status;
}

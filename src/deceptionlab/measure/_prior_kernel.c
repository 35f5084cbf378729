/* Function sampling for two-hidden-layer ReLU MLPs on the Boolean cube {0,1}^n: the hot loop of
 * measure/prior.py, written out because batched 128x40x40 matmuls reach a third of a core's peak.
 *
 * For each draw d of a block: parameters from a counter-based generator (SplitMix64 of key + i*golden,
 * two 24-bit uniforms per output, mapped to [-1, 1)), in the order W1 (n x h1), b1, W2 (h1 x h2), b2,
 * w3 (h2), b3; layer 1 on all 2^n inputs by adding one weight row per input bit (the cube in counting
 * order); layer 2 as a register-blocked micro-kernel (4 units x 16 inputs in 8 AVX registers); the
 * output's sign packed into 64-bit words (input 64w+k is bit 63-k of word w). Python builds the same
 * draws with numpy and checks both agree (tests/measure/test_prior.py). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef float v8 __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));
#define GOLDEN 0x9E3779B97F4A7C15ULL

static inline uint64_t splitmix(uint64_t x) {
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

/* count uniforms in [-1, 1) for one draw, starting at counter c: 2 per SplitMix64 output */
static void uniforms(uint64_t key, uint64_t c, float* dst, int count) {
  for (int j = 0; j < count; j += 2) {
    uint64_t z = splitmix(key + (c + j / 2 + 1) * GOLDEN);
    dst[j] = (float)(z >> 40) * (1.0f / 8388608.0f) - 1.0f;
    if (j + 1 < count) dst[j + 1] = (float)((z >> 8) & 0xFFFFFF) * (1.0f / 8388608.0f) - 1.0f;
  }
}

/* bs1, bs2: the factors that make b2 and b3 consistent with the unscaled weights before them.
 * out: (draws, m / 64) int64. Needs m = 2^n a multiple of 64, h2 a multiple of 4. Returns 0 on success. */
int sample_block(uint64_t key, int draws, int n, int h1, int h2, float bs1, float bs2, int64_t* out) {
  const int m = 1 << n, per = n * h1 + h1 + h1 * h2 + h2 + h2 + 1, stride = per + (per & 1);
  float* p = aligned_alloc(32, sizeof(float) * ((stride + 7) / 8 * 8));
  float* hT = aligned_alloc(32, sizeof(float) * h1 * m);
  float* res = aligned_alloc(32, sizeof(float) * m);
  if (!p || !hT || !res) { free(p); free(hT); free(res); return 1; }
  const v8 zero = {0};
  for (int d = 0; d < draws; d++) {
    uniforms(key, (uint64_t)d * stride / 2, p, per);
    const float *W1 = p, *b1 = W1 + n * h1, *W2 = b1 + h1, *b2 = W2 + h1 * h2, *w3 = b2 + h2, b3 = w3[h2];
    for (int k = 0; k < h1; k++) {  /* hT[k][x] = relu(b1[k] + sum_i x_i W1[i][k]); x_0 is the top bit */
      float* row = hT + k * m;
      row[0] = b1[k];
      for (int i = n - 1, size = 1; i >= 0; i--, size *= 2)
        for (int t = 0; t < size; t++) row[size + t] = row[t] + W1[i * h1 + k];
      for (int t = 0; t < m; t++) row[t] = row[t] > 0 ? row[t] : 0;
    }
    const float c3 = b3 * bs2;
    for (int t = 0; t < m; t++) res[t] = c3;
    for (int o0 = 0; o0 < h2; o0 += 4) {
      for (int t0 = 0; t0 < m; t0 += 16) {
        v8 a[4][2];
        for (int r = 0; r < 4; r++) {
          const float c = b2[o0 + r] * bs1;
          a[r][0] = a[r][1] = (v8){c, c, c, c, c, c, c, c};
        }
        for (int k = 0; k < h1; k++) {
          const v8 x0 = *(const v8*)(hT + k * m + t0), x1 = *(const v8*)(hT + k * m + t0 + 8);
          for (int r = 0; r < 4; r++) {
            const float q = W2[k * h2 + o0 + r];
            a[r][0] += q * x0;
            a[r][1] += q * x1;
          }
        }
        for (int r = 0; r < 4; r++) {
          const float u = w3[o0 + r];
          for (int s = 0; s < 2; s++) {
            v8 y = (v8)((v8i)a[r][s] & (a[r][s] > zero));
            *(v8*)(res + t0 + 8 * s) += u * y;
          }
        }
      }
    }
    for (int w = 0; w < m / 64; w++) {
      uint64_t word = 0;
      for (int k = 0; k < 64; k++) word |= (uint64_t)(res[64 * w + k] > 0) << (63 - k);
      out[(int64_t)d * (m / 64) + w] = (int64_t)word;
    }
  }
  free(p); free(hT); free(res);
  return 0;
}

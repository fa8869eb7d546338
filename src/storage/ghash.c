/*-------------------------------------------------------------------------
 *
 * ghash.c
 *	  GHASH in carry-less multiplication with aggregated reduction (ghash.h).
 *
 * GCM's field is GF(2^128) modulo x^128 + x^7 + x^2 + x + 1, with the
 * first bit of a block the coefficient of x^0.  A block loaded and byte-
 * reversed holds its polynomial bit-reflected; the product of two such
 * values by PCLMULQDQ is then the reflected product shifted right by one,
 * which a shift left restores before the reflected reduction.  Both steps
 * are linear, so the unreduced products of several blocks can be added
 * (XOR) and reduced once: Horner's rule over n <= ARMDB_GHASH_POWERS
 * blocks at a time,
 *
 *	  x' = (x + B1) H^n + B2 H^(n-1) + ... + Bn H,
 *
 * multiplies each block by its power of H independently of the others,
 * instead of one dependent multiplication and reduction per block.  Sixteen
 * powers cover a small entry (its header, a value of up to ~190 bytes and
 * the length block) in one reduction.
 *
 *-------------------------------------------------------------------------
 */
#include "storage/status.h"

#include "storage/ghash.h"

#if defined(__x86_64__) && defined(__GNUC__)
#define ARMDB_GHASH_CLMUL 1
#include <immintrin.h>
#endif

#ifdef ARMDB_GHASH_CLMUL

#define CLMUL_TARGET __attribute__((target("pclmul,ssse3")))

CLMUL_TARGET static inline __m128i
byte_reverse(__m128i v)
{
	return _mm_shuffle_epi8(v, _mm_set_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10,
											11, 12, 13, 14, 15));
}

/* The sum of unreduced products a * b: its low, middle and high terms. */
typedef struct Product
{
	__m128i		lo;
	__m128i		mid;
	__m128i		hi;
} Product;

CLMUL_TARGET static inline void
product_add(Product *p, __m128i a, __m128i b)
{
	p->lo = _mm_xor_si128(p->lo, _mm_clmulepi64_si128(a, b, 0x00));
	p->hi = _mm_xor_si128(p->hi, _mm_clmulepi64_si128(a, b, 0x11));
	p->mid = _mm_xor_si128(p->mid, _mm_clmulepi64_si128(a, b, 0x10));
	p->mid = _mm_xor_si128(p->mid, _mm_clmulepi64_si128(a, b, 0x01));
}

/* The field element of a sum of products (bit-reflected, as its factors). */
CLMUL_TARGET static inline __m128i
product_reduce(const Product *p)
{
	__m128i		lo = _mm_xor_si128(p->lo, _mm_slli_si128(p->mid, 8));
	__m128i		hi = _mm_xor_si128(p->hi, _mm_srli_si128(p->mid, 8));
	__m128i		carry_lo;
	__m128i		carry_hi;
	__m128i		a;
	__m128i		b;

	/* the 256-bit hi:lo shifted left by one */
	carry_lo = _mm_srli_epi32(lo, 31);
	carry_hi = _mm_srli_epi32(hi, 31);
	lo = _mm_slli_epi32(lo, 1);
	hi = _mm_slli_epi32(hi, 1);
	hi = _mm_or_si128(hi, _mm_srli_si128(carry_lo, 12));
	hi = _mm_or_si128(hi, _mm_slli_si128(carry_hi, 4));
	lo = _mm_or_si128(lo, _mm_slli_si128(carry_lo, 4));

	/* reduction modulo x^128 + x^7 + x^2 + x + 1, reflected: first phase */
	a = _mm_xor_si128(_mm_slli_epi32(lo, 31), _mm_slli_epi32(lo, 30));
	a = _mm_xor_si128(a, _mm_slli_epi32(lo, 25));
	b = _mm_srli_si128(a, 4);
	lo = _mm_xor_si128(lo, _mm_slli_si128(a, 12));
	/* second phase */
	a = _mm_xor_si128(_mm_srli_epi32(lo, 1), _mm_srli_epi32(lo, 2));
	a = _mm_xor_si128(a, _mm_srli_epi32(lo, 7));
	a = _mm_xor_si128(a, b);
	lo = _mm_xor_si128(lo, a);
	return _mm_xor_si128(hi, lo);
}

CLMUL_TARGET static inline __m128i
field_multiply(__m128i a, __m128i b)
{
	Product		p = {_mm_setzero_si128(), _mm_setzero_si128(), _mm_setzero_si128()};

	product_add(&p, a, b);
	return product_reduce(&p);
}

/* x after n whole blocks at data, n <= ARMDB_GHASH_POWERS */
CLMUL_TARGET static inline __m128i
hash_group(const ArmdbGhashKey *gk, __m128i x, const uint8 *data, int n)
{
	Product		p = {_mm_setzero_si128(), _mm_setzero_si128(), _mm_setzero_si128()};

	for (int i = 0; i < n; i++)
	{
		__m128i		b = byte_reverse(_mm_loadu_si128((const __m128i *) (data + 16 * i)));

		if (i == 0)
			b = _mm_xor_si128(b, x);
		product_add(&p, b,
					_mm_loadu_si128((const __m128i *) gk->hpow[n - i - 1]));
	}
	return product_reduce(&p);
}

CLMUL_TARGET static void
ghash_init_clmul(ArmdbGhashKey *gk, const uint8 *h)
{
	__m128i		hr = byte_reverse(_mm_loadu_si128((const __m128i *) h));
	__m128i		power = hr;

	for (int i = 0; i < ARMDB_GHASH_POWERS; i++)
	{
		_mm_storeu_si128((__m128i *) gk->hpow[i], power);
		power = field_multiply(power, hr);
	}
}

CLMUL_TARGET static void
ghash_update_clmul(const ArmdbGhashKey *gk, uint8 *state, const uint8 *data,
				   size_t len)
{
	__m128i		x = byte_reverse(_mm_loadu_si128((const __m128i *) state));
	size_t		blocks = len / 16;

	while (blocks > 0)
	{
		int			n = (int) Min(blocks, (size_t) ARMDB_GHASH_POWERS);

		x = hash_group(gk, x, data, n);
		data += 16 * n;
		blocks -= n;
	}
	if (len % 16 != 0)
	{
		uint8		last[16] = {0};

		memcpy(last, data, len % 16);
		x = hash_group(gk, x, last, 1);
	}
	_mm_storeu_si128((__m128i *) state, byte_reverse(x));
}

bool
armdb_ghash_available(void)
{
	static int	available = -1;

	if (available < 0)
	{
		__builtin_cpu_init();
		available = __builtin_cpu_supports("pclmul") &&
			__builtin_cpu_supports("ssse3");
	}
	return available;
}

void
armdb_ghash_init(ArmdbGhashKey *gk, const uint8 *h)
{
	Assert(armdb_ghash_available());
	ghash_init_clmul(gk, h);
}

void
armdb_ghash_update(const ArmdbGhashKey *gk, uint8 *x, const uint8 *data,
				   size_t len)
{
	Assert(armdb_ghash_available());
	ghash_update_clmul(gk, x, data, len);
}

#else							/* !ARMDB_GHASH_CLMUL */

/* cipher.c calls the others only where this says yes */
bool
armdb_ghash_available(void)
{
	return false;
}

void
armdb_ghash_init(ArmdbGhashKey *gk, const uint8 *h)
{
	abort();
}

void
armdb_ghash_update(const ArmdbGhashKey *gk, uint8 *x, const uint8 *data,
				   size_t len)
{
	abort();
}

#endif							/* ARMDB_GHASH_CLMUL */

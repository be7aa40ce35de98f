// SPDX-License-Identifier: MIT
// augment.c: the training loop's random numbers and its data augmentation
// (random mirror and shift of each training image).
#include <stdbool.h>
#include <string.h>

#include "model.h"

// splitmix64: the shuffle's and augmentation's generator, seeded by the
// options and the epoch, so a run is repeatable and a resumed run sees
// the data as the whole one did.
uint64_t
model_rand(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

// pos is the image's place in the epoch's order, not in a rank's share,
// so every rank layout and a resume see the same images. Zeros (the
// background) come in at the shifted edges.
void
model_augment(const model_desc *d, const idn_model_train_opts *o,
    uint32_t epoch, uint64_t pos, uint8_t *x, uint8_t *tmp)
{
	uint64_t s = o->seed ^ ((uint64_t) epoch << 32) ^
	    ((pos + 1) * 0xd1b54a32d192ed03ull);
	uint64_t r = model_rand(&s);
	uint32_t span = 2 * o->crop_pad + 1;
	int dy = (int) (r % span) - (int) o->crop_pad;
	int dx = (int) ((r >> 16) % span) - (int) o->crop_pad;
	bool flip = (o->augment & IDN_MODEL_AUG_FLIP) && ((r >> 32) & 1);
	if (dy == 0 && dx == 0 && !flip) {
		return;
	}
	int h = (int) d->height, w = (int) d->width;
	size_t plane = (size_t) h * w;
	memcpy(tmp, x, plane * d->channels);
	for (uint32_t c = 0; c < d->channels; c++) {
		const uint8_t *src = tmp + c * plane;
		uint8_t *dst = x + c * plane;
		for (int y = 0; y < h; y++) {
			int sy = y + dy;
			for (int i = 0; i < w; i++) {
				int sx = (flip ? w - 1 - i : i) + dx;
				dst[y * w + i] = sy < 0 || sy >= h || sx < 0 ||
				    sx >= w ? 0 : src[sy * w + sx];
			}
		}
	}
}

// SPDX-License-Identifier: MIT
// augment_test.c: the training images' random mirror and shift, and the
// options that ask for them.
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#include "core/core.h"
#include "model/model.h"

#define H 28
#define W 28

static model_desc
desc_2ch(void)
{
	model_desc d;
	memset(&d, 0, sizeof(d));
	d.channels = 2;
	d.height = H;
	d.width = W;
	return d;
}

// A test image whose every pixel differs: 1 + (c * H * W + y * W + x) % 251.
static void
fill(uint8_t *x, uint32_t channels)
{
	for (size_t i = 0; i < channels * H * W; i++) {
		x[i] = (uint8_t) (1 + i % 251);
	}
}

// shift_of finds (dy, dx, flip) with out = in mirrored (if flip) then
// shifted by (dy, dx), zeros coming in; false if none within pad.
static bool
shift_of(const uint8_t *in, const uint8_t *out, uint32_t channels, int pad,
    int *dy, int *dx, bool *flip)
{
	for (int f = 0; f < 2; f++) {
		for (int a = -pad; a <= pad; a++) {
			for (int b = -pad; b <= pad; b++) {
				bool same = true;
				for (uint32_t c = 0; c < channels && same; c++) {
					const uint8_t *p = in + c * H * W;
					const uint8_t *q = out + c * H * W;
					for (int y = 0; y < H && same; y++) {
						for (int i = 0; i < W && same; i++) {
							int sy = y + a;
							int sx = (f ? W - 1 - i : i) + b;
							uint8_t want = sy < 0 || sy >= H ||
							    sx < 0 || sx >= W ? 0 :
							    p[sy * W + sx];
							same = q[y * W + i] == want;
						}
					}
				}
				if (same) {
					*dy = a;
					*dx = b;
					*flip = f != 0;
					return true;
				}
			}
		}
	}
	return false;
}

// Over 400 places in an epoch: every output is the input mirrored and/or
// shifted by at most crop_pad, each channel alike; every shift and both
// mirror states occur; the same (seed, epoch, place) gives the same image
// and another epoch or seed a different sequence.
static void
test_augment_shifts_and_mirrors(void **st)
{
	(void) st;
	model_desc d = desc_2ch();
	idn_model_train_opts o;
	idn_model_train_opts_init(&o);
	o.augment = IDN_MODEL_AUG_FLIP;
	o.crop_pad = 2;
	uint8_t in[2 * H * W], out[2 * H * W], again[2 * H * W], tmp[2 * H * W];
	fill(in, 2);
	int seen[5][5][2];
	memset(seen, 0, sizeof(seen));
	int differ_epoch = 0, differ_seed = 0;
	for (uint64_t pos = 0; pos < 400; pos++) {
		memcpy(out, in, sizeof(in));
		model_augment(&d, &o, 3, pos, out, tmp);
		int dy, dx;
		bool flip;
		assert_true(shift_of(in, out, 2, 2, &dy, &dx, &flip));
		seen[dy + 2][dx + 2][flip]++;
		memcpy(again, in, sizeof(in));
		model_augment(&d, &o, 3, pos, again, tmp);
		assert_memory_equal(out, again, sizeof(out));
		memcpy(again, in, sizeof(in));
		model_augment(&d, &o, 4, pos, again, tmp);
		differ_epoch += memcmp(out, again, sizeof(out)) != 0;
		o.seed = 2;
		memcpy(again, in, sizeof(in));
		model_augment(&d, &o, 3, pos, again, tmp);
		differ_seed += memcmp(out, again, sizeof(out)) != 0;
		o.seed = 1;
	}
	for (int a = 0; a < 5; a++) {
		for (int b = 0; b < 5; b++) {
			// 400 draws over 50 outcomes: each about 8 times.
			assert_true(seen[a][b][0] > 0 && seen[a][b][1] > 0);
		}
	}
	assert_true(differ_epoch > 300);
	assert_true(differ_seed > 300);
}

// Mirror only: half the images mirrored, none shifted; no options: the
// image is left alone.
static void
test_augment_flip_only_and_none(void **st)
{
	(void) st;
	model_desc d = desc_2ch();
	d.channels = 1;
	idn_model_train_opts o;
	idn_model_train_opts_init(&o);
	uint8_t in[H * W], out[H * W], tmp[H * W];
	fill(in, 1);
	memcpy(out, in, sizeof(in));
	model_augment(&d, &o, 1, 7, out, tmp);
	assert_memory_equal(in, out, sizeof(in));
	o.augment = IDN_MODEL_AUG_FLIP;
	int flips = 0;
	for (uint64_t pos = 0; pos < 1000; pos++) {
		memcpy(out, in, sizeof(in));
		model_augment(&d, &o, 1, pos, out, tmp);
		int dy, dx;
		bool flip;
		assert_true(shift_of(in, out, 1, 0, &dy, &dx, &flip));
		flips += flip;
	}
	assert_in_range(flips, 400, 600);
}

// idn_model_train refuses unknown augment bits and a crop_pad over half
// the image, naming the option.
static void
test_augment_refused(void **st)
{
	(void) st;
	static const char sim[] = "backend = sim\ninput = 1x28x28\n"
	    "classes = 10\nservice_ms = 0\n";
	idn_model *m = NULL;
	IDN_PASS(idn_model_load(sim, strlen(sim), NULL, 0, NULL, &m));
	uint8_t images[4 * H * W] = {0}, labels[4] = {0, 1, 2, 3};
	idn_model_data set = {.images = images, .labels = labels, .n = 4};
	idn_model_train_opts o;
	idn_model_train_opts_init(&o);
	o.batch_size = 2;
	o.augment = 2;
	IDN_FAIL(idn_model_train(m, &o, &set, NULL), IDN_EINVAL);
	assert_non_null(strstr(idn_model_errmsg(m), "augment"));
	o.augment = IDN_MODEL_AUG_FLIP;
	o.crop_pad = 15;
	IDN_FAIL(idn_model_train(m, &o, &set, NULL), IDN_EINVAL);
	assert_non_null(strstr(idn_model_errmsg(m), "crop_pad"));
	o.crop_pad = 14;
	IDN_PASS(idn_model_train(m, &o, &set, NULL));
	idn_model_close(m);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_augment_shifts_and_mirrors),
		cmocka_unit_test(test_augment_flip_only_and_none),
		cmocka_unit_test(test_augment_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

// SPDX-License-Identifier: MIT
// hello.c: the smallest program on the installed library, built by
// install_test.py with `pkg-config --cflags --libs idunno`. It prints an
// error text, makes a key, opens a client (to nobody), runs a sim model
// and, given a torch model's desc and .pt, a torch one; then it prints
// which libidunno and torch module it mapped.
//   hello DIR [DESC PT]
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <idunno/idunno.h>

static char *
slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;
	if (f != NULL && fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 &&
	    fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t) n + 1)) &&
	    fread(buf, 1, (size_t) n, f) == (size_t) n) {
		*len = (size_t) n;
	} else {
		free(buf);
		buf = NULL;
	}
	if (f != NULL) {
		fclose(f);
	}
	return buf;
}

static int
classify(const char *desc, size_t desc_len, const void *pt, size_t pt_len,
    const char *what)
{
	idn_model *m = NULL;
	idn_model_info info;
	char *err = NULL;
	int rv = idn_model_load(desc, desc_len, pt, pt_len, &err, &m);
	if (rv == IDN_OK && (rv = idn_model_describe(m, &info)) == IDN_OK) {
		size_t n = (size_t) info.channels * info.height * info.width;
		uint8_t *img = calloc(n, 1);
		uint32_t cls;
		float score;
		rv = img ? idn_model_infer(m, img, 1, n, &cls, &score) :
		    IDN_ENOMEM;
		if (rv == IDN_OK) {
			printf("%s: %s backend, class %u\n", what,
			    info.backend, (unsigned) cls);
		}
		free(img);
	}
	if (rv != IDN_OK) {
		fprintf(stderr, "hello: %s model: %s%s%s\n", what,
		    idn_strerror(rv), err ? ": " : "", err ? err : "");
	}
	idn_free(err);
	idn_model_close(m);
	return rv;
}

// Prints the mapped files whose names contain needle.
static void
mapped(const char *needle)
{
	FILE *f = fopen("/proc/self/maps", "re");
	char line[4096], last[4096] = "";
	while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
		char *path = strchr(line, '/');
		if (path != NULL && strstr(path, needle) != NULL &&
		    strcmp(path, last) != 0) {
			snprintf(last, sizeof(last), "%s", path);
			printf("mapped: %s", path);
		}
	}
	if (f != NULL) {
		fclose(f);
	}
}

int
main(int argc, char **argv)
{
	if (argc != 2 && argc != 4) {
		fprintf(stderr, "usage: hello DIR [DESC PT]\n");
		return 2;
	}
	printf("idunno %d.%d.%d: %s\n", IDN_VERSION_MAJOR, IDN_VERSION_MINOR,
	    IDN_VERSION_PATCH, idn_strerror(IDN_ENOENT));
	char path[4096];
	snprintf(path, sizeof(path), "%s/hello.key", argv[1]);
	uint8_t key[IDN_KEY_BYTES];
	idn_client *c = NULL;
	idn_member *mv = NULL;
	size_t n = 0;
	int rv = idn_key_create(path, key);
	if (rv != IDN_OK || (rv = idn_client_open("127.0.0.1:1", key, &c))) {
		fprintf(stderr, "hello: %s\n", idn_strerror(rv));
		return 1;
	}
	idn_client_set_timeout(c, 300);
	rv = idn_client_members(c, &mv, &n);
	printf("members of nobody: %s\n", idn_strerror(rv));
	idn_free(mv);
	idn_client_close(c);
	if (rv == IDN_OK) {
		return 1;
	}

	static const char sim[] = "backend = sim\ninput = 1x28x28\n"
				  "classes = 10\n";
	if (classify(sim, sizeof(sim) - 1, NULL, 0, "sim") != IDN_OK) {
		return 1;
	}
	if (argc == 4) {
		size_t dlen, plen;
		char *desc = slurp(argv[2], &dlen), *pt = slurp(argv[3], &plen);
		rv = desc && pt ? classify(desc, dlen, pt, plen, "torch") :
		    IDN_ENOENT;
		free(desc);
		free(pt);
		if (rv != IDN_OK) {
			return 1;
		}
	}
	mapped("libidunno");
	return 0;
}

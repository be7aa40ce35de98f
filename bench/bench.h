// SPDX-License-Identifier: MIT
// bench.h: what the benchmarks share: the --csv file of their raw rows and
// the parsing of their numeric options.
#ifndef IDN_BENCH_H
#define IDN_BENCH_H

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// bench_csv_open creates path and writes its header line (the column
// names, comma separated). A NULL path means no CSV: *out is NULL and
// bench_csv_row writes nothing. Returns 0, or -1 after saying why on
// stderr. Rows are line-buffered, so a run that dies part-way still leaves
// the rows of the measurements it finished.
static inline int
bench_csv_open(const char *prog, const char *path, const char *header,
    FILE **out)
{
	*out = NULL;
	if (path == NULL) {
		return 0;
	}
	FILE *f = fopen(path, "w");
	if (f == NULL || setvbuf(f, NULL, _IOLBF, 0) != 0 ||
	    fprintf(f, "%s\n", header) < 0) {
		fprintf(stderr, "%s: --csv %s: %s\n", prog, path,
		    strerror(errno));
		if (f != NULL) {
			fclose(f);
		}
		return -1;
	}
	*out = f;
	return 0;
}

// bench_csv_row writes one row: fmt gives the fields, comma separated,
// without the newline. Numbers go plain (%d, %.3f: no units, no digit
// groups), as the report script reads them.
static inline void
bench_csv_row(FILE *f, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static inline void
bench_csv_row(FILE *f, const char *fmt, ...)
{
	if (f == NULL) {
		return;
	}
	va_list ap;
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	fputc('\n', f);
}

// bench_csv_close closes the CSV (NULL: nothing); -1, said on stderr, if
// any row could not be written, so the run's exit status shows it.
static inline int
bench_csv_close(const char *prog, FILE *f)
{
	if (f == NULL) {
		return 0;
	}
	int bad = ferror(f);
	if (fclose(f) != 0 || bad) {
		fprintf(stderr, "%s: --csv: rows could not be written\n", prog);
		return -1;
	}
	return 0;
}

// bench_opt handles the options of every benchmark for its getopt_long
// loop: 'c' (--csv FILE) sets *csv, 'h' (--help) prints the usage on
// stdout. Returns -1 when parsing goes on, else the exit code: 0 after
// --help, 2 (usage on stderr) for an option it does not know.
static inline int
bench_opt(int ch, const char **csv, void (*usage)(FILE *))
{
	switch (ch) {
	case 'c':
		*csv = optarg;
		return -1;
	case 'h':
		usage(stdout);
		return 0;
	default:
		usage(stderr);
		return 2;
	}
}

// bench_cmp_double orders doubles ascending, for qsort.
static inline int
bench_cmp_double(const void *a, const void *b)
{
	double x = *(const double *) a, y = *(const double *) b;
	return (x > y) - (x < y);
}

// bench_median sorts v[0..n) (n > 0) and returns its median.
static inline double
bench_median(double *v, int n)
{
	qsort(v, (size_t) n, sizeof(*v), bench_cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// bench_long parses s, a whole number in lo..hi (lo >= 0); -1, said on
// stderr naming opt, when it is not one.
static inline long
bench_long(const char *prog, const char *opt, const char *s, long lo, long hi)
{
	char *end;
	errno = 0;
	long n = strtol(s, &end, 10);
	if (errno != 0 || *s == '\0' || *end != '\0' || n < lo || n > hi) {
		fprintf(stderr, "%s: %s: '%s' is not a number in %ld..%ld\n",
		    prog, opt, s, lo, hi);
		return -1;
	}
	return n;
}

// bench_list parses s, a comma list of whole numbers in lo..hi (lo >= 0,
// "1,16,256"), into v, at most cap of them. Returns how many, or -1 said
// on stderr naming opt.
static inline int
bench_list(const char *prog, const char *opt, const char *s, long lo,
    long hi, long *v, int cap)
{
	int n = 0;
	for (const char *p = s;; p++) {
		char *end;
		errno = 0;
		long x = strtol(p, &end, 10);
		// Digits only: strtol alone would take " 1", "+1" or "-0".
		if (errno != 0 || *p < '0' || *p > '9' ||
		    (*end != ',' && *end != '\0') || x < lo || x > hi ||
		    n == cap) {
			fprintf(stderr, "%s: %s: '%s' is not a comma list of "
			    "at most %d numbers in %ld..%ld\n", prog, opt, s,
			    cap, lo, hi);
			return -1;
		}
		v[n++] = x;
		if (*end == '\0') {
			return n;
		}
		p = end;
	}
}

#endif

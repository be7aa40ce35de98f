// SPDX-License-Identifier: MIT
// err.c: idn_strerror and the only conversions from other libraries' codes.
#include <errno.h>

#include "core/core.h"

static const char *const messages[] = {
#define IDN_ERR_MSG(name, msg) msg,
	IDN_ERRORS(IDN_ERR_MSG)
#undef IDN_ERR_MSG
};

const char *
idn_strerror(int err)
{
	if (err < 0 || err >= IDN_ERR_COUNT) {
		return "unknown error";
	}
	return messages[err];
}

int
core_err_from_errno(int e)
{
	switch (e) {
	case 0:
		return IDN_OK;
	case ENOMEM:
		return IDN_ENOMEM;
	case ENOENT:
		return IDN_ENOENT;
	case EEXIST:
		return IDN_EEXIST;
	case EINVAL:
		return IDN_EINVAL;
	case EACCES:
	case EPERM:
	case EROFS:
		return IDN_EPERM;
	case EBUSY:
		return IDN_EBUSY;
	case ETIMEDOUT:
		return IDN_ETIMEDOUT;
	case EFBIG:
		return IDN_ETOOBIG;
	default:
		return IDN_ESYS;
	}
}

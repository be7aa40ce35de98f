// SPDX-License-Identifier: MIT
// idunno.h: the umbrella header: includes the whole public API.
#ifndef IDUNNO_IDUNNO_H
#define IDUNNO_IDUNNO_H

#include <idunno/base.h>
#include <idunno/client.h>
#include <idunno/membership.h>
#include <idunno/node.h>
#include <idunno/sdfs.h>
#include <idunno/model.h>
#include <idunno/catalog.h>
#include <idunno/job.h>
#include <idunno/sched.h>

#endif

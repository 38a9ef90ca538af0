/* rill — hybrid coroutine-thread dataflow engine. Include this one header. */
#ifndef RILL_H
#define RILL_H

#include "rill/version.h"
#include "rill/error.h"
#include "rill/coro.h"
#include "rill/item.h"
#include "rill/fields.h"
#include "rill/pipeline.h"
#include "rill/lines.h"
#include "rill/stages.h"
#include "rill/count.h"
#include "rill/stats.h"
#include "rill/sched.h"
#include "rill/net.h"
#include "rill/tcp_lines.h"

#endif

/* conc.h: the umbrella header. Includes every module's header, layer by
 * layer. */
#ifndef CONC_H
#define CONC_H

#include "conc/common.h"
#include "conc/error.h"
#include "conc/time.h"
#include "conc/alloc.h"
#include "conc/buf.h"
#include "conc/arena.h"
#include "conc/obj.h"
#include "conc/sync.h"
#include "conc/thread.h"
#include "conc/queue.h"
#include "conc/process.h"
#include "conc/subprocess.h"
#include "conc/ipc.h"
#include "conc/listener.h"
#include "conc/manager.h"
#include "conc/mpqueue.h"
#include "conc/shm.h"
#include "conc/task.h"
#include "conc/future.h"
#include "conc/executor.h"
#include "conc/pool.h"
#include "conc/aio.h"
#include "conc/aio_sync.h"
#include "conc/tls.h"
#include "conc/aio_stream.h"
#include "conc/aio_subprocess.h"
#include "conc/aio_net.h"
#include "conc/ws.h"
#include "conc/dist.h"

#endif

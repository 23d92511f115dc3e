/* libtern's public interface: one header for users of the library. Each module's part lives in
 * include/tern/<module>.h and is included here; nothing under src/ is public. */
#ifndef TERN_H
#define TERN_H
#include "tern/core.h"
#include "tern/tok.h"
#include "tern/data.h"
#include "tern/secure.h"
#include "tern/ledger.h"
#include "tern/model.h"
#include "tern/optim.h"
#include "tern/comm.h"
#include "tern/ddp.h"
#include "tern/ckpt.h"
#include "tern/io.h"
#include "tern/gguf.h"
#include "tern/hw.h"
#include "tern/policy.h"
#include "tern/train.h"
#include "tern/eval.h"
#include "tern/watch.h"
#endif

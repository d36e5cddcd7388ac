// Linux interfaces the Swift Glibc module does not export. The worker's event
// loop waits in epoll: one wait costs the same with 5 or 5,000 open upstream
// sockets, which poll(2) over all of them does not.
#ifndef CHATQUEUE_CLINUX_SHIM_H
#define CHATQUEUE_CLINUX_SHIM_H

#include <sys/epoll.h>

#endif

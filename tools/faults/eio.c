/*
 * An LD_PRELOAD shim that makes fsync(2) and fdatasync(2) fail with EIO while a trigger file exists.
 *
 * LMDB makes a commit durable with fdatasync (data pages, then the meta page); a failing device shows
 * up there first. tools/io_fault_test.py starts the server with this shim, creates the file named by
 * AUTHLEDGER_FAULT_FILE to make the "device" fail, and removes it to heal it. Hand-written: it is a
 * few lines of libc interposition, which no library on the offline list provides.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

static int failing(void) {
    const char *trigger = getenv("AUTHLEDGER_FAULT_FILE");
    return trigger != NULL && access(trigger, F_OK) == 0;
}

int fdatasync(int fd) {
    static int (*real)(int);
    if (failing()) {
        errno = EIO;
        return -1;
    }
    if (real == NULL) real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    return real(fd);
}

int fsync(int fd) {
    static int (*real)(int);
    if (failing()) {
        errno = EIO;
        return -1;
    }
    if (real == NULL) real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    return real(fd);
}

#include <gpiod.h>
#include <sys/prctl.h>

/* Names the calling thread (Linux keeps 15 bytes): prctl is variadic, which Swift
   cannot call. Used by PressDrivers' nameThreadForOS(). */
static inline int pressd_set_thread_name(const char *name) {
    return prctl(PR_SET_NAME, (unsigned long)name, 0UL, 0UL, 0UL);
}

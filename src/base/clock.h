/* The monotonic clock, for deadlines and intervals: a step of the wall clock never
 * stretches or cuts them. */
#ifndef ACMERA_BASE_CLOCK_H
#define ACMERA_BASE_CLOCK_H

#include <stdint.h>

int64_t mono_ms(void);
int64_t mono_s(void);

#endif

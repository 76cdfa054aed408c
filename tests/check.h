// check: the assertions and summary shared by every test program
#ifndef XB_CHECK_H
#define XB_CHECK_H

#include <math.h>
#include <stdio.h>

static int check_failures_;
static int check_count_;

/* Assert a condition; on failure print the location and a printf-style description. */
#define CHECK(cond, ...)                                                                        \
    do {                                                                                        \
        check_count_++;                                                                         \
        if (!(cond)) {                                                                          \
            check_failures_++;                                                                  \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                     \
            fprintf(stderr, __VA_ARGS__);                                                       \
            fputc('\n', stderr);                                                                \
        }                                                                                       \
    } while (0)

/* |got - want| <= tol_rel * max(|want|, tiny); tiny keeps exact zeros comparable. */
#define CHECK_REL(got, want, tol_rel, what)                                                     \
    do {                                                                                        \
        double g_ = (got), w_ = (want), t_ = (tol_rel);                                         \
        double s_ = fabs(w_) > 1e-300 ? fabs(w_) : 1e-300;                                      \
        CHECK(fabs(g_ - w_) <= t_ * s_, "%s: got %.17g want %.17g (rel err %.3g > %.3g)", what, \
              g_, w_, fabs(g_ - w_) / s_, t_);                                                  \
    } while (0)

#define CHECK_ABS(got, want, tol_abs, what)                                                     \
    do {                                                                                        \
        double g_ = (got), w_ = (want), t_ = (tol_abs);                                         \
        CHECK(fabs(g_ - w_) <= t_, "%s: got %.17g want %.17g (abs err %.3g > %.3g)", what, g_,  \
              w_, fabs(g_ - w_), t_);                                                           \
    } while (0)

/* Print the verdict line and return the exit status for main(). */
static inline int check_summary(const char *name)
{
    printf("%s: %d checks, %d failed\n", name, check_count_, check_failures_);
    return check_failures_ ? 1 : 0;
}

#endif

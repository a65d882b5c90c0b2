#ifndef ESAFETY_PAM_H
#define ESAFETY_PAM_H
#include <stddef.h>

/// Checks `user`'s `password` through PAM service `service` (pam_authenticate, then
/// pam_acct_mgmt: an expired or locked account is refused too). Returns 0 when both succeed,
/// else PAM's error code, with its text in `error` (at most `size` bytes).
int esafety_pam_check(const char *service, const char *user, const char *password, char *error, size_t size);

#endif

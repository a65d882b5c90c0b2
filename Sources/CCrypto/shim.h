// OpenSSL's libcrypto (apt: libssl-dev), for SHA-256 in the incident log's hash chain:
// it uses the CPU's SHA extensions where present, about nine times the speed of portable code.
#include <openssl/sha.h>

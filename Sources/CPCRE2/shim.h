#ifndef ESAFETY_CPCRE2_SHIM_H
#define ESAFETY_CPCRE2_SHIM_H
// Only 8-bit code units are used; Swift calls the pcre2_*_8 functions directly
// because the unsuffixed names are function-like macros that do not import.
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#endif

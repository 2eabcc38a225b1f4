/*
 * A stand-in bcryptprimitives.dll for Wine 8, which lacks it.
 *
 * Every binary built by Rust 1.78 or later imports ProcessPrng from bcryptprimitives.dll
 * (the standard library's random source), so under Wine 8 even an empty Rust program fails
 * to start. This DLL exports ProcessPrng, implemented with RtlGenRandom (SystemFunction036
 * from advapi32). It is test infrastructure for scripts/windows-tests.sh and is never shipped.
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
    while (length > 0) {
        ULONG chunk = length > 0x7fffffff ? 0x7fffffff : (ULONG)length;
        if (!SystemFunction036(data, chunk)) {
            return FALSE;
        }
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}

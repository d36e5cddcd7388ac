// libFuzzer's entry point for programs that have their own main. SwiftPM
// links executables with main defined as the module's top-level code, which
// replaces libFuzzer's main; that code hands control to libFuzzer here.
// Linked in by `-sanitize=fuzzer`.
#ifndef CHATQUEUE_CLIBFUZZER_SHIM_H
#define CHATQUEUE_CLIBFUZZER_SHIM_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*UserCb)(const uint8_t *Data, size_t Size));

#endif

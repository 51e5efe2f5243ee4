/*
 * File-backed NVM for the QEMU mps2 boards. QEMU's mps2 "flash" is RAM and is
 * lost when the emulator stops, so the NVM region (boards/<board>.toml
 * nvm_origin/nvm_size) is backed by a host file named on the semihosting
 * command line (`-semihosting-config enable=on,target=native,arg=nvm=PATH`):
 *
 *   boot       SYS_OPEN PATH, SYS_READ the whole file into the region
 *   erase      0xFF over the page in the region, then SYS_SEEK + SYS_WRITE of it
 *   program    the bytes into the region, then written through in rows of
 *              TA_QEMU_NVM_ROW bytes, one SYS_WRITE each
 *   read       memcpy from the region (it is memory-mapped, like real flash)
 *
 * Killing QEMU in the middle of a save thus leaves the file with a page half
 * erased or half programmed, row by row, as a power cut leaves real flash.
 * Without a usable file (no nvm= argument, missing file, wrong size) there is
 * no NVM: ta_qemu_nvm_init returns NULL.
 */
#ifndef TA_QEMU_NVM_H
#define TA_QEMU_NVM_H

#include "tinyadapt/ta_hal.h"

#define TA_QEMU_NVM_ROW 256u

const ta_nvm_t *ta_qemu_nvm_init(void);

#endif /* TA_QEMU_NVM_H */

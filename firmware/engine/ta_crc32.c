#include "tinyadapt/ta_model.h"

/* CRC-32/IEEE (reflected, polynomial 0xEDB88320) four bits at a time: a 64-byte table instead
 * of the usual 1 KiB one, and a quarter of the bitwise loop's steps. It runs over the whole
 * blob at every load and SELECT (hundreds of KiB for a MobileNet) and over every frame. */
static const uint32_t k_nibble[16] = {
    0x00000000u, 0x1DB71064u, 0x3B6E20C8u, 0x26D930ACu, 0x76DC4190u, 0x6B6B51F4u, 0x4DB26158u, 0x5005713Cu,
    0xEDB88320u, 0xF00F9344u, 0xD6D6A3E8u, 0xCB61B38Cu, 0x9B64C2B0u, 0x86D3D2D4u, 0xA00AE278u, 0xBDBDF21Cu,
};

uint32_t ta_crc32(uint32_t crc, const void *data, size_t len)
{
    const uint8_t *p = (const uint8_t *)data;
    const uint8_t *end = p + len;
    crc = ~crc;
    while (p != end) {
        crc ^= *p++;
        crc = (crc >> 4) ^ k_nibble[crc & 15u];
        crc = (crc >> 4) ^ k_nibble[crc & 15u];
    }
    return ~crc;
}

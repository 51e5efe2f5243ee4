/*
 * Protocol server: turns the HAL's byte stream into requests for command
 * handlers and their results into responses (docs/PROTOCOL.md).
 *
 * Call sequence:
 *   ta_server_init(&srv, hal, sets, n_sets, ctx);
 *   ta_server_run(&srv);    until a handler calls ta_server_stop() or the
 *                           link fails; or call ta_server_poll() in your loop
 *
 * What the server does so that handlers never see a bad frame:
 *   - splits the stream at 0x00, COBS-decodes in place, checks length + CRC;
 *     a bad frame is dropped and answered with a NAK;
 *   - executes each request `seq` at most once: a repeat of the last `seq` is
 *     answered with the cached encoded response (HELLO always executes);
 *   - looks the command up in a list of command sets, so new command groups
 *     (TRAIN_*, ADAPT_*) are added by passing one more set, never by editing
 *     this module.
 *
 * Memory: all buffers are inside ta_server_t (about 3 x 1 KiB for the
 * default TA_PROTO_MAX_PAYLOAD); nothing is allocated.
 */
#ifndef TA_SERVER_H
#define TA_SERVER_H

#include <stdint.h>

#include "ta_app_config.h"
#include "ta_cobs.h"
#include "tinyadapt/ta_hal.h"
#include "tinyadapt/ta_protocol.h"
#include "tinyadapt/ta_status.h"

#define TA_SERVER_FRAME_MAX (TA_FRAME_OVERHEAD + TA_PROTO_MAX_PAYLOAD)
#define TA_SERVER_WIRE_MAX (TA_COBS_MAX_ENCODED(TA_SERVER_FRAME_MAX) + 1u) /* + delimiter */

typedef struct {
    uint16_t seq;
    uint8_t cmd;
    uint16_t len;           /* payload bytes */
    const uint8_t *payload; /* valid only during the handler call */
} ta_request_t;

typedef struct {
    uint8_t *payload; /* write the response payload here ... */
    uint16_t cap;     /* ... at most this many bytes (TA_PROTO_MAX_PAYLOAD) */
    uint16_t len;     /* and set this; ignored (sent as 0) when the handler fails */
} ta_response_t;

/** A command handler: its return value becomes the response's status. */
typedef ta_status_t (*ta_command_fn)(void *ctx, const ta_request_t *req, ta_response_t *resp);

typedef struct {
    uint8_t code; /* TA_CMD_* */
    ta_command_fn handler;
} ta_command_t;

typedef struct {
    const char *name; /* for documentation and debugging, e.g. "core" */
    const ta_command_t *commands;
    uint16_t count;
} ta_command_set_t;

typedef struct {
    uint32_t frames_rx;  /* well-formed request frames received (duplicates included) */
    uint32_t frames_tx;  /* frames sent: responses, resent responses and NAKs */
    uint32_t crc_errors; /* frames dropped as corrupt (COBS, length, CRC, overlong, wrong type) */
    uint32_t naks_sent;
    uint32_t duplicates; /* requests answered from the cache */
} ta_server_stats_t;

typedef struct {
    const ta_hal_t *hal;
    const ta_command_set_t *const *sets;
    uint8_t n_sets;
    void *ctx;
    ta_server_stats_t stats;

    uint8_t stop;        /* set by ta_server_stop(): leave ta_server_run */
    uint8_t have_last;   /* a response is cached for last_seq */
    uint8_t rx_overflow; /* the frame being received is too long: skip to 0x00 */
    uint16_t last_seq;
    uint32_t rx_len;
    uint32_t tx_len;     /* cached encoded response, delimiter included */

    uint8_t rx[TA_SERVER_WIRE_MAX];        /* encoded frame, decoded in place */
    uint8_t frame[TA_SERVER_FRAME_MAX];    /* response being built */
    uint8_t tx[TA_SERVER_WIRE_MAX];        /* encoded last response (the cache) */
} ta_server_t;

/**
 * Prepare a server. `sets` (n_sets entries) and `ctx` must outlive it; `ctx`
 * is passed to every handler.
 * @return TA_OK, TA_ERR_ARG (NULL hal/read/write, or no sets)
 */
TA_CHECK_RESULT ta_status_t ta_server_init(ta_server_t *srv, const ta_hal_t *hal, const ta_command_set_t *const *sets,
                               uint8_t n_sets, void *ctx);

/**
 * Read what the link has (waiting at most `timeout_ms` for the first byte)
 * and handle every complete frame in it.
 * @return TA_OK, or the HAL's negative status when the link failed
 */
TA_CHECK_RESULT ta_status_t ta_server_poll(ta_server_t *srv, uint32_t timeout_ms);

/** Poll until ta_server_stop() is called (TA_OK) or the link fails (its status). */
TA_CHECK_RESULT ta_status_t ta_server_run(ta_server_t *srv);

/** Ask ta_server_run to return once the current response has been sent and flushed. */
void ta_server_stop(ta_server_t *srv);

/** Feed received bytes directly (what ta_server_poll does with the HAL's bytes). */
TA_CHECK_RESULT ta_status_t ta_server_feed(ta_server_t *srv, const uint8_t *data, uint32_t len);

#endif /* TA_SERVER_H */

#include "ta_server.h"

#include <stddef.h>
#include <string.h>

#include "ta_frame.h"

ta_status_t ta_server_init(ta_server_t *srv, const ta_hal_t *hal, const ta_command_set_t *const *sets,
                           uint8_t n_sets, void *ctx)
{
    TA_ENSURE(srv != NULL && hal != NULL && hal->read != NULL && hal->write != NULL, TA_ERR_ARG);
    TA_ENSURE(sets != NULL && n_sets > 0, TA_ERR_ARG);
    memset(srv, 0, sizeof(*srv));
    srv->hal = hal;
    srv->sets = sets;
    srv->n_sets = n_sets;
    srv->ctx = ctx;
    return TA_OK;
}

void ta_server_stop(ta_server_t *srv) { srv->stop = 1; }

static const ta_command_t *find_command(const ta_server_t *srv, uint8_t code)
{
    for (uint8_t s = 0; s < srv->n_sets; ++s) {
        const ta_command_set_t *set = srv->sets[s];
        for (uint16_t i = 0; i < set->count; ++i) {
            if (set->commands[i].code == code) {
                return &set->commands[i];
            }
        }
    }
    return NULL;
}

/* COBS-encode the frame in srv->frame (`frame_len` bytes) into `wire`, add the delimiter and send it. */
static ta_status_t send_frame(ta_server_t *srv, uint32_t frame_len, uint8_t *wire, uint32_t *wire_len)
{
    const int32_t n = ta_cobs_encode(srv->frame, frame_len, wire, TA_SERVER_WIRE_MAX - 1u);
    if (n < 0) {
        return (ta_status_t)n;
    }
    wire[n] = 0;
    *wire_len = (uint32_t)n + 1u;
    srv->stats.frames_tx++;
    return srv->hal->write(srv->hal->ctx, wire, *wire_len);
}

/* Answer a frame that could not be parsed; the NAK's status says why. */
static ta_status_t send_nak(ta_server_t *srv, ta_status_t why)
{
    uint8_t wire[TA_COBS_MAX_ENCODED(TA_FRAME_OVERHEAD) + 1u];
    uint8_t frame[TA_FRAME_OVERHEAD];
    const int32_t n = ta_frame_finish(frame, sizeof(frame), TA_FRAME_NAK, TA_FRAME_NAK_SEQ, 0, (int8_t)why, 0);
    if (n < 0) {
        return (ta_status_t)n;
    }
    const int32_t e = ta_cobs_encode(frame, (uint32_t)n, wire, sizeof(wire) - 1u);
    if (e < 0) {
        return (ta_status_t)e;
    }
    wire[e] = 0;
    srv->stats.crc_errors++;
    srv->stats.naks_sent++;
    srv->stats.frames_tx++;
    return srv->hal->write(srv->hal->ctx, wire, (uint32_t)e + 1u);
}

/* Run one well-formed request and send (and cache) its response. */
static ta_status_t execute(ta_server_t *srv, const ta_frame_t *f)
{
    ta_status_t status;
    ta_response_t resp = {srv->frame + TA_FRAME_HEADER_SIZE, (uint16_t)TA_PROTO_MAX_PAYLOAD, 0};
    if (f->version != TA_PROTO_VERSION) {
        status = TA_ERR_VERSION;
    } else {
        const ta_command_t *cmd = find_command(srv, f->cmd);
        if (cmd == NULL) {
            status = TA_ERR_UNSUPPORTED;
        } else {
            const ta_request_t req = {f->seq, f->cmd, f->len, f->payload};
            status = cmd->handler(srv->ctx, &req, &resp);
        }
    }
    if (status != TA_OK || resp.len > TA_PROTO_MAX_PAYLOAD) {
        resp.len = 0;
        if (status == TA_OK) {
            status = TA_ERR_OVERFLOW; /* a handler bug; never send past the buffer */
        }
    }
    const int32_t n = ta_frame_finish(srv->frame, sizeof(srv->frame), TA_FRAME_RESPONSE, f->seq, f->cmd,
                                      (int8_t)status, resp.len);
    if (n < 0) {
        return (ta_status_t)n;
    }
    /* Cache only version-1 answers: the filter tracks this protocol's seq space. */
    srv->have_last = 0;
    TA_TRY(send_frame(srv, (uint32_t)n, srv->tx, &srv->tx_len));
    if (f->version == TA_PROTO_VERSION) {
        srv->have_last = 1;
        srv->last_seq = f->seq;
    }
    return TA_OK;
}

/* A 0x00 arrived: handle the bytes collected since the previous one. */
static ta_status_t end_of_frame(ta_server_t *srv)
{
    const uint32_t len = srv->rx_len;
    const uint8_t overflow = srv->rx_overflow;
    srv->rx_len = 0;
    srv->rx_overflow = 0;
    if (overflow) {
        return send_nak(srv, TA_ERR_OVERFLOW);
    }
    if (len == 0) {
        return TA_OK; /* back-to-back delimiters: an empty frame, used to flush line noise */
    }
    const int32_t n = ta_cobs_decode(srv->rx, len, srv->rx, sizeof(srv->rx));
    if (n < 0) {
        return send_nak(srv, (ta_status_t)n);
    }
    ta_frame_t f;
    const ta_status_t st = ta_frame_parse(srv->rx, (uint32_t)n, TA_PROTO_MAX_PAYLOAD, &f);
    if (st != TA_OK) {
        return send_nak(srv, st);
    }
    if (f.type != TA_FRAME_REQUEST) {
        srv->stats.crc_errors++; /* our own frames echoed back, or another device: never answer */
        return TA_OK;
    }
    srv->stats.frames_rx++;
    if (f.cmd != TA_CMD_HELLO && srv->have_last && f.seq == srv->last_seq) {
        srv->stats.duplicates++;
        srv->stats.frames_tx++;
        return srv->hal->write(srv->hal->ctx, srv->tx, srv->tx_len);
    }
    return execute(srv, &f);
}

ta_status_t ta_server_feed(ta_server_t *srv, const uint8_t *data, uint32_t len)
{
    TA_ENSURE(srv != NULL && (data != NULL || len == 0), TA_ERR_ARG);
    for (uint32_t i = 0; i < len && !srv->stop; ++i) {
        const uint8_t b = data[i];
        if (b == 0) {
            TA_TRY(end_of_frame(srv));
        } else if (srv->rx_len < sizeof(srv->rx)) {
            srv->rx[srv->rx_len++] = b;
        } else {
            srv->rx_overflow = 1;
        }
    }
    return TA_OK;
}

ta_status_t ta_server_poll(ta_server_t *srv, uint32_t timeout_ms)
{
    TA_ENSURE(srv != NULL, TA_ERR_ARG);
    uint8_t chunk[64];
    const int32_t n = srv->hal->read(srv->hal->ctx, chunk, sizeof(chunk), timeout_ms);
    if (n < 0) {
        return (ta_status_t)n;
    }
    return ta_server_feed(srv, chunk, (uint32_t)n);
}

ta_status_t ta_server_run(ta_server_t *srv)
{
    TA_ENSURE(srv != NULL, TA_ERR_ARG);
    srv->stop = 0;
    while (!srv->stop) {
        TA_TRY(ta_server_poll(srv, TA_HAL_WAIT_FOREVER));
    }
    if (srv->hal->flush != NULL) {
        TA_TRY(srv->hal->flush(srv->hal->ctx));
    }
    return TA_OK;
}

// Typed wrappers for the parts of rabbitmq-c (0.11) that Swift cannot import
// or cannot call safely. Each wrapper says why it exists.
#ifndef CHATQUEUE_CRABBITMQ_SHIM_H
#define CHATQUEUE_CRABBITMQ_SHIM_H

#include <amqp.h>
#include <amqp_framing.h>
#include <amqp_tcp_socket.h>
#include <amqp_ssl_socket.h>
#include <sys/time.h>

// amqp_login is variadic (the SASL method decides the trailing arguments), and
// Swift cannot call C variadic functions. PLAIN takes exactly user and password.
static inline amqp_rpc_reply_t cq_amqp_login_plain(amqp_connection_state_t state,
                                                   const char *vhost,
                                                   int channel_max,
                                                   int frame_max,
                                                   int heartbeat,
                                                   const char *user,
                                                   const char *password) {
    return amqp_login(state, vhost, channel_max, frame_max, heartbeat,
                      AMQP_SASL_METHOD_PLAIN, user, password);
}

// The same for amqp_login_with_properties, so the worker can name its
// connections (connection_name shows in the management UI and rabbitmqctl).
static inline amqp_rpc_reply_t cq_amqp_login_plain_with_properties(amqp_connection_state_t state,
                                                                   const char *vhost,
                                                                   int channel_max,
                                                                   int frame_max,
                                                                   int heartbeat,
                                                                   const amqp_table_t *properties,
                                                                   const char *user,
                                                                   const char *password) {
    return amqp_login_with_properties(state, vhost, channel_max, frame_max, heartbeat, properties,
                                      AMQP_SASL_METHOD_PLAIN, user, password);
}

// A zero timeout makes amqp_simple_wait_frame_noblock read only what the socket
// already holds. It also sends a heartbeat when one is due, which is how the
// event loop services heartbeats between polls. Swift would need a mutable
// struct timeval for every call; this keeps that detail here.
static inline int cq_amqp_read_frame_now(amqp_connection_state_t state, amqp_frame_t *frame) {
    struct timeval zero = {0, 0};
    return amqp_simple_wait_frame_noblock(state, frame, &zero);
}

// The AMQP_*_METHOD macros are casts ((amqp_method_number_t)0x...), which Swift
// does not import at all; these typed constants are what the worker dispatches on.
#define CQ_METHOD(name, value) static const amqp_method_number_t CQ_##name = value;
CQ_METHOD(BASIC_DELIVER, AMQP_BASIC_DELIVER_METHOD)
CQ_METHOD(BASIC_ACK, AMQP_BASIC_ACK_METHOD)
CQ_METHOD(BASIC_PUBLISH, AMQP_BASIC_PUBLISH_METHOD)
CQ_METHOD(BASIC_REJECT, AMQP_BASIC_REJECT_METHOD)
CQ_METHOD(BASIC_NACK, AMQP_BASIC_NACK_METHOD)
CQ_METHOD(BASIC_RETURN, AMQP_BASIC_RETURN_METHOD)
CQ_METHOD(BASIC_CANCEL, AMQP_BASIC_CANCEL_METHOD)
CQ_METHOD(BASIC_CANCEL_OK, AMQP_BASIC_CANCEL_OK_METHOD)
CQ_METHOD(CHANNEL_CLOSE, AMQP_CHANNEL_CLOSE_METHOD)
CQ_METHOD(CONNECTION_CLOSE, AMQP_CONNECTION_CLOSE_METHOD)
CQ_METHOD(CONNECTION_BLOCKED, AMQP_CONNECTION_BLOCKED_METHOD)
CQ_METHOD(CONNECTION_UNBLOCKED, AMQP_CONNECTION_UNBLOCKED_METHOD)
CQ_METHOD(CHANNEL_CLOSE_OK, AMQP_CHANNEL_CLOSE_OK_METHOD)
CQ_METHOD(CONNECTION_CLOSE_OK, AMQP_CONNECTION_CLOSE_OK_METHOD)
#undef CQ_METHOD

// The property flag bits, typed as amqp_flags_t (Swift would import them as Int32).
static const amqp_flags_t CQ_FLAG_CONTENT_TYPE = AMQP_BASIC_CONTENT_TYPE_FLAG;
static const amqp_flags_t CQ_FLAG_HEADERS = AMQP_BASIC_HEADERS_FLAG;
static const amqp_flags_t CQ_FLAG_DELIVERY_MODE = AMQP_BASIC_DELIVERY_MODE_FLAG;
static const amqp_flags_t CQ_FLAG_CORRELATION_ID = AMQP_BASIC_CORRELATION_ID_FLAG;
static const amqp_flags_t CQ_FLAG_REPLY_TO = AMQP_BASIC_REPLY_TO_FLAG;
static const amqp_flags_t CQ_FLAG_EXPIRATION = AMQP_BASIC_EXPIRATION_FLAG;
static const amqp_flags_t CQ_FLAG_MESSAGE_ID = AMQP_BASIC_MESSAGE_ID_FLAG;
static const amqp_flags_t CQ_FLAG_TYPE = AMQP_BASIC_TYPE_FLAG;

#endif

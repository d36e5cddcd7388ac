// Typed wrappers for the parts of rabbitmq-c (0.11) that Swift cannot import
// or cannot call safely. Each wrapper says why it exists.
#ifndef CHATQUEUE_CRABBITMQ_SHIM_H
#define CHATQUEUE_CRABBITMQ_SHIM_H

#include <amqp.h>
#include <amqp_framing.h>
#include <amqp_tcp_socket.h>
#include <amqp_ssl_socket.h>
#include <sys/time.h>
#include <limits.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

// amqp_login_with_properties is variadic (the SASL method decides the trailing
// arguments), and Swift cannot call C variadic functions. PLAIN takes exactly
// user and password. The properties name the connection (connection_name shows
// in the management UI and rabbitmqctl) and announce capabilities.
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

// Writing our own encoded frames through a TLS connection without blocking.
//
// rabbitmq-c's TLS writes (amqp_basic_publish, acks) loop until every byte is
// taken, polling the socket with no deadline, so a body larger than the free
// socket space would freeze the event loop. rabbitmq-c 0.11 exposes the
// connection's SSL_CTX but not its SSL session; an info callback on the
// context hears about the session during the handshake and keeps a pointer to
// it in the context's app data. The session lives until the socket closes
// (amqp_destroy_connection, or rabbitmq-c closing it after a heartbeat
// timeout): check amqp_get_sockfd() >= 0 before every use.
static inline void cq_ssl_remember_session(const SSL *ssl, int where, int ret) {
    (void)where;
    (void)ret;
    SSL_CTX_set_app_data(SSL_get_SSL_CTX(ssl), (void *)ssl);
}

// Before amqp_socket_open: remember the session, and let a retried write
// pass the same bytes from another address (our buffer grows while a record
// waits for the socket). rabbitmq-c already sets SSL_MODE_ENABLE_PARTIAL_WRITE,
// so each SSL_write returns once a record is out instead of holding the rest.
static inline void cq_amqp_ssl_prepare(amqp_socket_t *socket) {
    SSL_CTX *context = (SSL_CTX *)amqp_ssl_socket_get_context(socket);
    SSL_CTX_set_info_callback(context, cq_ssl_remember_session);
    SSL_CTX_set_mode(context, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_ENABLE_PARTIAL_WRITE);
}

// After a successful amqp_socket_open: the connection's SSL session (NULL if
// the callback never heard of one, which a completed handshake rules out).
static inline SSL *cq_amqp_ssl_session(amqp_socket_t *socket) {
    return (SSL *)SSL_CTX_get_app_data((SSL_CTX *)amqp_ssl_socket_get_context(socket));
}

// What cq_ssl_write returns when it wrote nothing.
enum {
    CQ_TLS_WANT_WRITE = -1,  // the socket is full: retry with the same bytes once it is writable
    CQ_TLS_WANT_READ = -2,   // a renegotiation wants input first
    CQ_TLS_CLOSED = -3,      // the peer closed the TLS session
    CQ_TLS_SYSCALL = -4,     // the socket failed (errno says why)
    CQ_TLS_ERROR = -5,       // a TLS protocol error
};

// One non-blocking SSL_write (the socket is non-blocking): bytes written (> 0), or a CQ_TLS_* code.
static inline long cq_ssl_write(SSL *ssl, const void *bytes, size_t count) {
    ERR_clear_error();
    int written = SSL_write(ssl, bytes, count > INT_MAX ? INT_MAX : (int)count);
    if (written > 0) return written;
    switch (SSL_get_error(ssl, written)) {
    case SSL_ERROR_WANT_WRITE: return CQ_TLS_WANT_WRITE;
    case SSL_ERROR_WANT_READ: return CQ_TLS_WANT_READ;
    case SSL_ERROR_ZERO_RETURN: return CQ_TLS_CLOSED;
    case SSL_ERROR_SYSCALL: return CQ_TLS_SYSCALL;
    default: return CQ_TLS_ERROR;
    }
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
static const amqp_flags_t CQ_FLAG_TIMESTAMP = AMQP_BASIC_TIMESTAMP_FLAG;

#endif

// Typed wrappers for libcurl's variadic calls, which Swift cannot import.
// curl_easy_setopt, curl_easy_getinfo and curl_multi_setopt take one argument
// whose C type depends on the option; each wrapper fixes that type so the
// compiler checks it on the Swift side.
#ifndef CHATQUEUE_CCURL_SHIM_H
#define CHATQUEUE_CCURL_SHIM_H

#include <curl/curl.h>

// Options that take a `long` (timeouts, flags, sizes that fit a long).
static inline CURLcode cq_curl_easy_setopt_long(CURL *handle, CURLoption option, long value) {
    return curl_easy_setopt(handle, option, value);
}

// Options that take a `curl_off_t` (the *_LARGE sizes).
static inline CURLcode cq_curl_easy_setopt_off_t(CURL *handle, CURLoption option, curl_off_t value) {
    return curl_easy_setopt(handle, option, value);
}

// Options that take a C string; libcurl copies strings it is given (except
// CURLOPT_POSTFIELDS, which the worker never uses: it uses COPYPOSTFIELDS).
static inline CURLcode cq_curl_easy_setopt_string(CURL *handle, CURLoption option, const char *value) {
    return curl_easy_setopt(handle, option, value);
}

// Options that take an opaque pointer (*_DATA, CURLOPT_CURLU) or a buffer
// (CURLOPT_COPYPOSTFIELDS).
static inline CURLcode cq_curl_easy_setopt_pointer(CURL *handle, CURLoption option, void *value) {
    return curl_easy_setopt(handle, option, value);
}

// CURLOPT_HTTPHEADER: the list must outlive the transfer; the owner frees it.
static inline CURLcode cq_curl_easy_setopt_slist(CURL *handle, CURLoption option, struct curl_slist *value) {
    return curl_easy_setopt(handle, option, value);
}

// CURLOPT_WRITEFUNCTION and CURLOPT_HEADERFUNCTION share this signature.
typedef size_t (*cq_curl_data_callback)(char *data, size_t size, size_t count, void *userdata);
static inline CURLcode cq_curl_easy_setopt_data_callback(CURL *handle, CURLoption option, cq_curl_data_callback value) {
    return curl_easy_setopt(handle, option, value);
}

// CURLINFO_RESPONSE_CODE and other long-valued infos.
static inline CURLcode cq_curl_easy_getinfo_long(CURL *handle, CURLINFO info, long *value) {
    return curl_easy_getinfo(handle, info, value);
}

// CURLINFO_CONTENT_TYPE and other string-valued infos (owned by libcurl).
static inline CURLcode cq_curl_easy_getinfo_string(CURL *handle, CURLINFO info, char **value) {
    return curl_easy_getinfo(handle, info, value);
}

// curl_multi_setopt options that take a long (CURLMOPT_MAX_HOST_CONNECTIONS, ...).
static inline CURLMcode cq_curl_multi_setopt_long(CURLM *multi, CURLMoption option, long value) {
    return curl_multi_setopt(multi, option, value);
}

// CURLMOPT_SOCKETFUNCTION: libcurl says which sockets to watch, and for
// what, so the worker's epoll set holds them (the event-driven API:
// curl_multi_socket_action instead of curl_multi_perform, which visits every
// transfer on every call).
static inline CURLMcode cq_curl_multi_setopt_socket_function(CURLM *multi, curl_socket_callback value) {
    return curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, value);
}

// CURLMOPT_TIMERFUNCTION: libcurl says when it next needs
// curl_multi_socket_action(CURL_SOCKET_TIMEOUT) (timeouts, new transfers).
static inline CURLMcode cq_curl_multi_setopt_timer_function(CURLM *multi, curl_multi_timer_callback value) {
    return curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, value);
}

// CURLMOPT_SOCKETDATA and CURLMOPT_TIMERDATA: the callbacks' userp.
static inline CURLMcode cq_curl_multi_setopt_pointer(CURLM *multi, CURLMoption option, void *value) {
    return curl_multi_setopt(multi, option, value);
}

// A write callback's answer that pauses the transfer (libcurl keeps the data
// and stops reading the socket), and curl_easy_pause's "continue"; both are
// macros Swift may not import with the right type.
static const size_t CQ_CURL_WRITEFUNC_PAUSE = CURL_WRITEFUNC_PAUSE;
static const int CQ_CURLPAUSE_CONT = CURLPAUSE_CONT;

// CURLMsg.data is a union; Swift can read it, but naming the member keeps the
// intent (the result of a finished transfer) visible at the call site.
static inline CURLcode cq_curl_msg_result(const CURLMsg *msg) {
    return msg->data.result;
}

#endif

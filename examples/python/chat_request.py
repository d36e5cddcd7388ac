#!/usr/bin/env python3
"""Send one chat completion request to chatqueue and print the answer.

A complete requester for the chatqueue wire contract (docs/protocol.md) in
about 150 lines of pika:

  1. declare an exclusive, server-named reply queue (it disappears with us);
  2. publish the request body to the request queue through the default
     exchange, with reply_to, correlation_id and message_id set;
  3. read replies: `chat.completion.chunk` (stream only, printed as they come),
     then exactly one final `chat.completion` or `error`;
  4. to stop early (Ctrl-C, or --cancel-after N chunks), publish the request's
     cancel message to the cancel exchange; the worker stops the upstream and
     ends the request with an `error` reply whose code is `cancelled`.

Exit status: 0 on chat.completion, 1 on an error reply, 2 on usage errors or
when the broker cannot be reached, 3 when no final reply arrives in time,
130 when the request was cancelled.

Example:
  python3 chat_request.py --url amqp://guest:guest@127.0.0.1:5672/%2f \\
      --queue chat.requests --stream "Tell me a joke"
"""

import argparse
import json
import signal
import sys
import time
import uuid

import pika  # Debian/Ubuntu: apt install python3-pika; elsewhere: pip install pika


def parse_arguments():
    parser = argparse.ArgumentParser(description="Send one chat request through chatqueue.")
    parser.add_argument("--url", default="amqp://guest:guest@127.0.0.1:5672/%2f",
                        help="broker URL (default: %(default)s)")
    parser.add_argument("--queue", default="chat.requests", help="request queue (default: %(default)s)")
    parser.add_argument("--model", default="deepseek-chat", help="model to ask (default: %(default)s)")
    parser.add_argument("--stream", action=argparse.BooleanOptionalAction, default=True,
                        help="stream the answer as it is generated (default: on)")
    parser.add_argument("--timeout", type=float, default=120,
                        help="seconds to wait for the final reply (default: %(default)s)")
    parser.add_argument("--extra", default=None, metavar="JSON",
                        help='JSON object merged into the request body, e.g. \'{"temperature": 0.2}\'')
    parser.add_argument("--cancel-exchange", default="chat.requests.cancel",
                        help="fanout exchange for cancel messages, the workers' queue.cancel_exchange "
                             "(default: %(default)s)")
    parser.add_argument("--cancel-after", type=int, default=None, metavar="N",
                        help="cancel the request once N chunks arrived (Ctrl-C cancels at any time)")
    parser.add_argument("--cancel-wait", type=float, default=5,
                        help="seconds to wait for the cancelled reply after cancelling (default: %(default)s)")
    parser.add_argument("message", help="the user message")
    return parser.parse_args()


def build_body(args):
    """The request body: an OpenAI/DeepSeek-style chat completion request."""
    body = {
        "model": args.model,
        "messages": [{"role": "user", "content": args.message}],
        "stream": args.stream,
    }
    if args.extra:
        extra = json.loads(args.extra)
        if not isinstance(extra, dict):
            sys.exit("--extra must be a JSON object")
        body.update(extra)
    return json.dumps(body).encode("utf-8")


def cancel(channel, request_id, exchange="chat.requests.cancel"):
    """Asks the workers to cancel a request (docs/protocol.md, "Cancelling a request").

    The cancel message names the request id the worker knows, the request's
    message_id (every reply carries it as the x-request-id header). It goes to a
    fanout exchange that every worker binds a queue of its own to, so the worker
    holding the request hears it wherever it runs; the routing key is ignored. A
    worker that has not received the request yet remembers the id for a while and
    answers `cancelled` without calling the API when the request arrives.
    """
    channel.basic_publish(
        exchange=exchange,
        routing_key="",
        body=json.dumps({"request_id": request_id}).encode("utf-8"),
        properties=pika.BasicProperties(content_type="application/json"),
    )


def print_error(body):
    """An error reply: {"error": {"message", "type", "code", "param"}, "status", "request_id", ...}."""
    try:
        reply = json.loads(body)
        error = reply["error"]
        print("error %s %s (%s): %s [request %s, retryable: %s, attempts: %s]" % (
            reply.get("status"), error.get("type"), error.get("code"), error.get("message"),
            reply.get("request_id"), json.dumps(reply.get("retryable")), reply.get("attempts")), file=sys.stderr)
    except (ValueError, KeyError, TypeError, AttributeError):
        print("error: %r" % body, file=sys.stderr)


def reply_code(body):
    """The error.code of an error reply, or None."""
    try:
        return json.loads(body)["error"].get("code")
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def main():
    args = parse_arguments()
    body = build_body(args)

    try:
        connection = pika.BlockingConnection(pika.URLParameters(args.url))
    except pika.exceptions.AMQPError as error:
        print("cannot connect to the broker: %r" % error, file=sys.stderr)
        return 2
    channel = connection.channel()

    # Our reply queue: server-named, exclusive to this connection, deleted when we leave.
    # (RabbitMQ's direct reply-to, "amq.rabbitmq.reply-to", works as well.)
    reply_queue = channel.queue_declare(queue="", exclusive=True, auto_delete=True).method.queue

    # message_id is the request id (it stays the same if the broker redelivers the request);
    # correlation_id is echoed on every reply so we can match them.
    request_id = str(uuid.uuid4())
    channel.basic_publish(
        exchange="",                      # the default exchange routes by queue name
        routing_key=args.queue,
        body=body,
        properties=pika.BasicProperties(
            content_type="application/json",
            reply_to=reply_queue,
            correlation_id=request_id,
            message_id=request_id,
            delivery_mode=2,              # persistent: survives a broker restart
        ),
    )

    # Ctrl-C only raises a flag: the loop below sees it within a quarter second and cancels.
    interrupted = []
    signal.signal(signal.SIGINT, lambda signum, frame: interrupted.append(signum))

    deadline = time.monotonic() + args.timeout
    streamed = ""          # content of the chunks printed so far
    attempt = None         # x-attempt of the chunks we hold (see "Redelivery" in docs/protocol.md)
    chunks = 0             # chunks received
    cancelled = False      # whether we sent the cancel message
    try:
        # consume() yields (None, None, None) after inactivity_timeout seconds without a
        # message, which is when we look at the clock.
        for method, properties, reply_body in channel.consume(reply_queue, auto_ack=True, inactivity_timeout=0.25):
            if not cancelled and (interrupted or (args.cancel_after is not None and chunks >= args.cancel_after)):
                cancel(channel, request_id, args.cancel_exchange)
                cancelled = True
                if streamed:
                    print()
                print("cancelling request %s" % request_id, file=sys.stderr)
                deadline = time.monotonic() + args.cancel_wait  # the cancelled reply comes quickly
            elif cancelled and len(interrupted) > 1:
                break  # a second Ctrl-C: stop waiting
            if time.monotonic() >= deadline:
                break
            if method is None:
                continue
            if properties.correlation_id != request_id:
                continue  # not ours (cannot happen with a private queue, but cheap to check)
            headers = properties.headers or {}

            if properties.type == "chat.completion.chunk":
                # A redelivered request streams again from x-seq 0 with a higher x-attempt: start over.
                if attempt is not None and headers.get("x-attempt") != attempt:
                    print("\n[the request was redelivered; its answer starts over]", file=sys.stderr)
                    streamed = ""
                attempt = headers.get("x-attempt")
                chunks += 1
                chunk = json.loads(reply_body)
                for choice in chunk.get("choices", []):
                    text = (choice.get("delta") or {}).get("content") or ""
                    streamed += text
                    sys.stdout.write(text)
                    sys.stdout.flush()

            elif properties.type == "chat.completion":
                # The final answer, in both modes (in stream mode assembled from the chunks).
                completion = json.loads(reply_body)
                answer = completion["choices"][0]["message"].get("content") or ""
                if streamed:
                    print()  # end the streamed line
                if answer != streamed:
                    print(answer)  # non-stream mode (or chunks we did not see whole)
                usage = completion.get("usage") or {}
                print("usage: prompt_tokens=%s completion_tokens=%s total_tokens=%s" % (
                    usage.get("prompt_tokens"), usage.get("completion_tokens"), usage.get("total_tokens")))
                return 0

            elif properties.type == "error":
                if streamed and not cancelled:
                    print()
                if reply_code(reply_body) == "cancelled":
                    print("cancelled request %s after %d chunks" % (request_id, chunks), file=sys.stderr)
                    return 130
                print_error(reply_body)
                return 1

            else:
                print("ignoring a reply of unknown type %r" % properties.type, file=sys.stderr)

        if cancelled:
            print("cancelled request %s; no cancelled reply within %g s" % (request_id, args.cancel_wait),
                  file=sys.stderr)
            return 130
        if streamed:
            print()
        print("no final reply within %g s" % args.timeout, file=sys.stderr)
        return 3
    finally:
        try:
            channel.cancel()
            connection.close()
        except pika.exceptions.AMQPError:
            pass


if __name__ == "__main__":
    sys.exit(main())

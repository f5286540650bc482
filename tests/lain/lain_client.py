#!/usr/bin/env python3
"""A LAIN Entry client, for checking Entry's compatibility with LAIN's protocol.

It speaks exactly what LAIN's entryclient 2.3 sent, using Google's protobuf runtime with
LAIN's own schema (package `message`, enums nested in the messages, no Entry extensions):
the upgrade headers access-token, app-name, proc-name, instance-no and term-type; one WINCH
right after connecting; then stdin one UTF-8 character per PLAIN message, as LAIN's client
did. It prints STDOUT to stdout, STDERR and CLOSE to stderr, ignores PING, and exits 0 after
a CLOSE (3 if the connection ended without one).

Usage: lain_client.py URL TOKEN APP PROC INSTANCE COLS ROWS < input
"""

import sys

import websocket
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory


def lain_schema():
    """LAIN Entry's message.proto, built as a descriptor (no protoc needed)."""
    f = descriptor_pb2.FileDescriptorProto(name="message.proto", package="message", syntax="proto3")
    for name, enum_name, values in (
        ("RequestMessage", "RequestType", [("PLAIN", 0), ("WINCH", 1)]),
        ("ResponseMessage", "ResponseType", [("STDOUT", 0), ("STDERR", 1), ("CLOSE", 2), ("PING", 3)]),
    ):
        m = f.message_type.add(name=name)
        e = m.enum_type.add(name=enum_name)
        for value_name, number in values:
            e.value.add(name=value_name, number=number)
        m.field.add(name="msgType", number=1, type=descriptor_pb2.FieldDescriptorProto.TYPE_ENUM,
                    type_name=f".message.{name}.{enum_name}",
                    label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL)
        m.field.add(name="content", number=2, type=descriptor_pb2.FieldDescriptorProto.TYPE_BYTES,
                    label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(f)
    get = message_factory.GetMessageClass
    return get(pool.FindMessageTypeByName("message.RequestMessage")), get(
        pool.FindMessageTypeByName("message.ResponseMessage"))


def main():
    url, token, app, proc, instance, cols, rows = sys.argv[1:8]
    Request, Response = lain_schema()
    ws = websocket.create_connection(url, header=[
        f"access-token: {token}", f"app-name: {app}", f"proc-name: {proc}",
        f"instance-no: {instance}", "term-type: xterm",
    ])
    ws.send_binary(Request(msgType=1, content=f"{cols} {rows}".encode()).SerializeToString())
    for char in sys.stdin.read():
        ws.send_binary(Request(msgType=0, content=char.encode("utf-8")).SerializeToString())
    while True:
        try:
            data = ws.recv()
        except websocket.WebSocketConnectionClosedException:
            return 3
        if not data:
            return 3
        message = Response()
        message.ParseFromString(data)
        if message.msgType == 0:
            sys.stdout.buffer.write(message.content)
            sys.stdout.flush()
        elif message.msgType in (1, 2):
            sys.stderr.buffer.write(message.content + b"\n")
            sys.stderr.flush()
            if message.msgType == 2:
                ws.close()
                return 0


if __name__ == "__main__":
    sys.exit(main())

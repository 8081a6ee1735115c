"""Decodes a Perfetto trace with Perfetto's own generated message classes (the `perfetto`
package from PyPI ships perfetto_trace_pb2, built from protos/perfetto/trace/*.proto) and
prints it as JSON, so the Rust tests can check it. Fields this decoder does not know stay
in the message's unknown fields and are reported, so a wrong field number fails the test."""
import json
import sys

from google.protobuf import json_format
from perfetto.protos.perfetto.trace import perfetto_trace_pb2 as pb


def unknown_fields(msg, path, out):
    # UnknownFieldSet is the portable way to see fields the schema does not declare.
    from google.protobuf.unknown_fields import UnknownFieldSet
    if len(UnknownFieldSet(msg)) > 0:
        out.append(path)
    for field, value in msg.ListFields():
        if field.type == field.TYPE_MESSAGE:
            # protobuf 5+ has is_repeated; older versions only label.
            repeated = (
                field.is_repeated
                if hasattr(field, "is_repeated")
                else field.label == field.LABEL_REPEATED
            )
            if repeated:
                for i, v in enumerate(value):
                    unknown_fields(v, f"{path}.{field.name}[{i}]", out)
            else:
                unknown_fields(value, f"{path}.{field.name}", out)


def main():
    data = open(sys.argv[1], "rb").read()
    trace = pb.Trace()
    trace.ParseFromString(data)
    unknown = []
    for i, p in enumerate(trace.packet):
        unknown_fields(p, f"packet[{i}]", unknown)
    d = json_format.MessageToDict(trace, preserving_proto_field_name=True)
    json.dump({"trace": d, "unknown_fields": unknown[:20]}, sys.stdout)


main()

"""The controller's own view of the cluster: Metadata asked of a coordinator (any member answers from
its applied metadata image: unfenced brokers, partition leaders, replicas, ISR).

Brokers answer Metadata from their own copy, which a broker cut off from the ensemble keeps serving
unchanged (it still names itself leader), so "is the cluster whole again" and "who leads partition
p" are asked of the coordinator leader instead. The request is encoded and the answer decoded by
kafka-python's protocol classes (a client nobody here wrote), over a plain socket.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

from kafka.protocol.metadata import MetadataRequest
from kafka.protocol.parser import KafkaProtocol

VERSION = 1


@dataclass
class ControllerView:
    brokers: set[int]  # unfenced
    partitions: dict[tuple[str, int], tuple[int, list[int], list[int]]]  # -> (leader or -1, replicas, ISR)


def metadata(host: str, port: int, topics: list[str], timeout: float = 3.0) -> ControllerView:
    proto = KafkaProtocol(client_id="oxka-faultcheck")
    proto.send_request(MetadataRequest[VERSION](topics=topics))
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        sock.sendall(proto.send_bytes())
        responses = []
        while not responses:
            data = sock.recv(65536)
            if not data:
                raise ConnectionError(f"{host}:{port} closed the connection before answering Metadata")
            responses = proto.receive_bytes(data)
    response = responses[0][1]
    brokers = {b[0] for b in response.brokers}
    partitions = {}
    for error, name, _internal, parts in response.topics:
        if error:
            continue
        for _perror, index, leader, replicas, isr in parts:
            partitions[(name, index)] = (leader, list(replicas), list(isr))
    return ControllerView(brokers, partitions)

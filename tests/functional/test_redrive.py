import boto3
from moto import mock_aws

from visual_search.ingest.redrive import redrive


def test_redrive_moves_every_parked_message_back_and_empties_the_dlq(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        sqs = boto3.client("sqs")
        dlq = sqs.create_queue(QueueName="dlq")["QueueUrl"]
        queue = sqs.create_queue(QueueName="ingest")["QueueUrl"]
        bodies = {f'{{"n": {i}}}' for i in range(25)}
        for body in bodies:
            sqs.send_message(QueueUrl=dlq, MessageBody=body)

        result = redrive(dlq, queue, client=sqs)

        assert result.moved == 25
        assert result.remaining_estimate == 0
        received = set()
        while batch := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", []):
            received |= {m["Body"] for m in batch}
            for m in batch:
                sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])
        assert received == bodies


def test_redrive_stops_at_the_requested_count(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        sqs = boto3.client("sqs")
        dlq = sqs.create_queue(QueueName="dlq")["QueueUrl"]
        queue = sqs.create_queue(QueueName="ingest")["QueueUrl"]
        for i in range(12):
            sqs.send_message(QueueUrl=dlq, MessageBody=str(i))
        assert redrive(dlq, queue, max_messages=5, client=sqs).moved == 5

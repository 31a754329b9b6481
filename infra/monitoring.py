"""A dashboard and the alarms an operator needs, every one notifying one SNS topic (an e-mail
subscription from `alarm_email`; subscribe anything else to the AlarmTopic output): API errors and
latency, ingest failures, retries and backlog age, the DLQ, and the OpenSearch domain's health.

Ingest reports a failed image through a partial batch response, which never raises Lambda's `Errors`:
with the index down every message is retried until the DLQ, an hour later. `MessagesRetried` (the
function's own metric) and the age of the oldest queued message fire within minutes instead."""

from __future__ import annotations

from aws_cdk import (
    Duration,
    Stack,
    aws_apigateway,
    aws_cloudwatch,
    aws_cloudwatch_actions,
    aws_kms,
    aws_lambda,
    aws_opensearchservice,
    aws_sns,
    aws_sns_subscriptions,
    aws_sqs,
)
from constructs import Construct

from visual_search.observability import NAMESPACE, STACK_DIMENSION

FIVE_MINUTES = Duration.minutes(5)
INGEST_SERVICE = "visual-search-ingest"  # the Metrics service dimension of functions/ingest/handler.py
BACKLOG_AGE_S = 900  # beyond the queue's 12-minute visibility timeout: a message has been retried
RETRIES_PER_5_MIN = 5


class Monitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        api: aws_apigateway.RestApi,
        ingest: aws_lambda.Function,
        queue: aws_sqs.Queue,
        dead_letter_alarm: aws_cloudwatch.Alarm,
        domain: aws_opensearchservice.Domain | None,
        alarm_email: str = "",
        key: aws_kms.IKey | None = None,
    ):
        super().__init__(scope, construct_id)
        # CloudWatch must be allowed to use the key to publish: the key policy's (docs/deploy.md).
        self.topic = aws_sns.Topic(
            self, "Alarms", display_name="Visual Search alarms", enforce_ssl=True, master_key=key
        )
        if alarm_email:
            self.topic.add_subscription(aws_sns_subscriptions.EmailSubscription(alarm_email))
        server_errors = api.metric_server_error(period=FIVE_MINUTES, statistic="Sum")
        latency = api.metric_latency(period=FIVE_MINUTES, statistic="p99")
        ingest_errors = ingest.metric_errors(period=FIVE_MINUTES, statistic="Sum")
        retried = aws_cloudwatch.Metric(
            namespace=NAMESPACE,
            metric_name="MessagesRetried",
            # This stack's only: another stack in the account files its retries under its own name.
            dimensions_map={"service": INGEST_SERVICE, STACK_DIMENSION: Stack.of(self).stack_name},
            period=FIVE_MINUTES,
            statistic="Sum",
        )
        backlog_age = queue.metric_approximate_age_of_oldest_message(period=FIVE_MINUTES, statistic="Maximum")
        self.alarms = [
            self._alarm("ApiServerErrors", server_errors, 1, "The API answered 5xx"),
            self._alarm("ApiLatencyP99", latency, 3000, "API p99 latency above 3 s"),
            self._alarm(
                "IngestErrors", ingest_errors, 1, "The ingest function failed (messages are retried)"
            ),
            self._alarm(
                "IngestRetries",
                retried,
                RETRIES_PER_5_MIN,
                "Images failed and were put back on the queue (index or S3 unreachable?): they reach the DLQ "
                "after 5 attempts",
            ),
            self._alarm(
                "IngestBacklogAge",
                backlog_age,
                BACKLOG_AGE_S,
                "An image has waited over 15 minutes to be indexed: ingest is failing or cannot keep up",
            ),
            dead_letter_alarm,
        ]
        widgets: list[aws_cloudwatch.IWidget] = [
            aws_cloudwatch.GraphWidget(
                title="API 5xx and 4xx", left=[server_errors, api.metric_client_error()]
            ),
            aws_cloudwatch.GraphWidget(
                title="API latency p50 / p99", left=[api.metric_latency(statistic="p50"), latency]
            ),
            aws_cloudwatch.GraphWidget(title="Ingest errors and retries", left=[ingest_errors, retried]),
            aws_cloudwatch.GraphWidget(title="Ingest backlog age (s)", left=[backlog_age]),
        ]
        if domain is not None:
            red = domain.metric_cluster_status_red(period=Duration.minutes(1))
            pressure = domain.metric_jvm_memory_pressure(period=FIVE_MINUTES)
            self.alarms += [
                self._alarm("OpenSearchRed", red, 1, "OpenSearch cluster status red"),
                self._alarm(
                    "OpenSearchJvmPressure", pressure, 85, "OpenSearch JVM memory pressure above 85%"
                ),
            ]
            widgets.append(aws_cloudwatch.GraphWidget(title="OpenSearch JVM pressure", left=[pressure]))
        widgets.append(aws_cloudwatch.AlarmStatusWidget(title="Alarms", alarms=self.alarms))
        notify = aws_cloudwatch_actions.SnsAction(self.topic)
        for alarm in self.alarms:
            alarm.add_alarm_action(notify)
            alarm.add_ok_action(notify)
        self.dashboard = aws_cloudwatch.Dashboard(self, "Dashboard", widgets=[widgets])

    def _alarm(
        self, name: str, metric: aws_cloudwatch.IMetric, threshold: float, why: str
    ) -> aws_cloudwatch.Alarm:
        return aws_cloudwatch.Alarm(
            self,
            name,
            metric=metric,
            threshold=threshold,
            evaluation_periods=1,
            comparison_operator=aws_cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=aws_cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=why,
        )

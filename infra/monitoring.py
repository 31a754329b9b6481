"""A dashboard and the alarms an operator needs: API errors and latency, ingest errors and the DLQ,
and the OpenSearch domain's health."""

from __future__ import annotations

from aws_cdk import Duration, aws_apigateway, aws_cloudwatch, aws_lambda, aws_opensearchservice
from constructs import Construct

FIVE_MINUTES = Duration.minutes(5)


class Monitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        api: aws_apigateway.RestApi,
        ingest: aws_lambda.Function,
        dead_letter_alarm: aws_cloudwatch.Alarm,
        domain: aws_opensearchservice.Domain | None,
    ):
        super().__init__(scope, construct_id)
        server_errors = api.metric_server_error(period=FIVE_MINUTES, statistic="Sum")
        latency = api.metric_latency(period=FIVE_MINUTES, statistic="p99")
        ingest_errors = ingest.metric_errors(period=FIVE_MINUTES, statistic="Sum")
        self.alarms = [
            self._alarm("ApiServerErrors", server_errors, 1, "The API answered 5xx"),
            self._alarm("ApiLatencyP99", latency, 3000, "API p99 latency above 3 s"),
            self._alarm(
                "IngestErrors", ingest_errors, 1, "The ingest function failed (messages are retried)"
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
            aws_cloudwatch.GraphWidget(title="Ingest errors", left=[ingest_errors]),
            aws_cloudwatch.AlarmStatusWidget(title="Alarms", alarms=self.alarms),
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

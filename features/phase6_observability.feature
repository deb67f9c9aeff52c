Feature: Phase 6 - metrics, logs, dashboards and alerts
  kube-prometheus-stack runs Prometheus, Alertmanager and kube-state-metrics through the Prometheus
  Operator; Promtail ships pod logs to Loki; Grafana shows the platform dashboards; Alertmanager sends
  alerts to the Slack channel "#boutique-alerts". On the lab target Prometheus, kube-state-metrics and
  Alertmanager are real local processes, Slack is a local receiver speaking Slack's API, and there is
  no Prometheus Operator, node-exporter, Grafana or Loki.

  Background:
    Given the platform is built through phase 6

  @phase6 @nightly @onprem_only
  Scenario: The Prometheus Operator runs the monitoring stack
    Then the Prometheus Operator, Prometheus, Alertmanager and kube-state-metrics are ready in "monitoring"
    And node-exporter runs on each of the 3 nodes
    And Prometheus has loaded the PrometheusRule "boutique-alerts"
    And the ServiceMonitor for ingress-nginx has all its targets up

  @phase6 @nightly
  Scenario: Prometheus scrapes the Boutique's replicas and resource requests
    Then Prometheus has the target "kube-state-metrics" up
    And every Prometheus target is up within 60 seconds
    And Prometheus has available-replica series for all 12 Deployments in "boutique-dev" within 120 seconds
    And Prometheus has CPU and memory request series for every Boutique container
    And every metric the alert rules and dashboards name has series in Prometheus

  @phase6 @nightly @onprem_only
  Scenario: Promtail ships the Boutique's pod logs to Loki
    Then Promtail runs on each of the 3 nodes
    When a test pod in "boutique-dev" writes a log line holding the run id
    Then Loki returns that line for the namespace "boutique-dev" within 60 seconds

  @phase6 @nightly @onprem_only
  Scenario: Grafana provisions the platform dashboards and data sources
    Then Grafana's data sources "Prometheus" and "Loki" pass their health checks
    And Grafana has the dashboards "Online Boutique overview", "Online Boutique resources" and "Cluster nodes"
    And Grafana marks those dashboards as provisioned from git
    And each of those dashboards is captured as a screen

  @phase6 @alerts @nightly
  Scenario: Alertmanager sends platform alerts to Slack
    Then Alertmanager routes alerts of severity "critical" and "warning" to the receiver "slack-boutique"
    And Alertmanager reads the Slack URL from a Secret, not from a file in git
    When a test alert "SuiteProbe" carrying the run id is posted to Alertmanager
    Then a message with the run id appears in "#boutique-alerts" within 60 seconds
    And that Slack message in "#boutique-alerts" is captured as a screen

  @phase6 @alerts @destructive
  Scenario: Every alert rule's Slack message is rendered by Alertmanager from the platform's template
    When every alert rule's firing example from its unit tests is posted to Alertmanager with the run id, the inhibiting ones after the others' messages arrived (60 seconds at most)
    Then each example has a message in "#boutique-alerts" naming its alert, severity, run id, summary and runbook link
    And each of those messages is attached to the report

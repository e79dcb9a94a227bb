"""Read samples out of a Prometheus text exposition, as a scraper would."""

from prometheus_client.parser import text_string_to_metric_families


def samples(text: str, name: str) -> list[dict[str, str]]:
    """The label sets of every sample called `name`."""
    return [
        sample.labels
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    ]


def sample_value(text: str, name: str, **labels: str) -> float:
    """The value of the sample `name` with exactly these labels; 0 when it is absent (a series not yet touched)."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return 0.0

"""keel: a declarative, governed machine-learning lifecycle on ZenML.

Importing keel switches off the usage telemetry of the libraries it drives, before any of them is
imported: regulated users must be able to say that nothing leaves the machine. A value the user
set explicitly is kept.
"""

import os

_TELEMETRY_OFF = {
    "ZENML_ANALYTICS_OPT_IN": "false",
    "WHYLOGS_NO_ANALYTICS": "True",
    "BENTOML_DO_NOT_TRACK": "True",
}
for _name, _value in _TELEMETRY_OFF.items():
    os.environ.setdefault(_name, _value)

__version__ = "0.1.0"

"""The sources on one machine: the synthetic events and catalog files with their ground truth, the
FX-rates API stand-in, the Kinesis producer and the landing zone."""

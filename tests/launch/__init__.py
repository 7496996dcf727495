"""Tests of the TPU launchers (launch/)."""

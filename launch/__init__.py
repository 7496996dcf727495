"""Launchers for TPU slices: `gcloud_tpu` (TPU VMs through gcloud) and `xm_launch` (XManager)."""

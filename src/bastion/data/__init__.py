"""Datasets: loaders for npy/npz, CSV, Parquet and image folders, and the bundled demo."""

from bastion.data.dataset import Dataset

__all__ = ["Dataset"]

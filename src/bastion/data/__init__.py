"""Datasets: loaders for npy/npz, CSV, Parquet and image folders, and the bundled demo."""

from bastion.data.dataset import Dataset
from bastion.data.load import load_dataset

__all__ = ["Dataset", "load_dataset"]

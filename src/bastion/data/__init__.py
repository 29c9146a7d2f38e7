"""Datasets: loaders for npy/npz, CSV, Parquet and image folders, splits, the bundled demo."""

from bastion.data.dataset import Dataset
from bastion.data.load import load_dataset
from bastion.data.split import load_split, split_dataset

__all__ = ["Dataset", "load_dataset", "load_split", "split_dataset"]

"""Packages of the distribution: the six top-level folders install as ``genpon.<folder>``.

The repository keeps ``core/ storage/ records/ search/ retention/ migrate/ api/`` at its top level (the
layout is part of the specification) but installs them under one namespace, so no generic
top-level name (``records``, ``storage``, ``search`` …) is put into site-packages where another
distribution of that name would overwrite it or be overwritten. ``genpon`` is an implicit
namespace package; ``genpon_verify`` (the offline verifier) stays a standalone package.
Everything else about the distribution is in pyproject.toml.
"""

from setuptools import find_namespace_packages, setup

LAYERS = ("core", "storage", "records", "search", "retention", "migrate", "api")

packages = ["genpon_verify"]
package_dir = {}
for layer in LAYERS:
    package_dir[f"genpon.{layer}"] = layer
    packages.append(f"genpon.{layer}")
    # namespace discovery: data folders (migrations, templates, demo CSVs) ship too
    subs = find_namespace_packages(layer, exclude=["*__pycache__*", "__pycache__"])
    packages += [f"genpon.{layer}.{sub}" for sub in subs]

setup(packages=packages, package_dir=package_dir)

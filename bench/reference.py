"""The original notebook's pipeline, kept as it was, as the baseline the engine is measured against.

Seed: torchvision CIFAR10 -> DataLoader(shuffle, num_workers=2) -> per sample PIL image -> ToTensor ->
Normalize(0.5, 0.5); eager NCHW model; Adam; evaluation over the test set at the *training* batch size.
Only the source of the images differs: an in-memory Dataset over the same decoded uint8 arrays that
normlib.run.data gives the engine, producing PIL images exactly as torchvision's CIFAR10.__getitem__ does.
The model is normlib.run.model.Network, the original's architecture (tests/test_model.py checks it).
"""
import time

import numpy as np
import torch
import torch.nn as nn
import torch.optim as optim
import torchvision.transforms as transforms
from PIL import Image

from normlib.run.model import Network

NUM_WORKERS = 2  # the original's DataLoader workers
LR = 0.001  # the original's Adam learning rate
ORIGINAL_TRANSFORM = transforms.Compose([  # the original's transform, per sample
    transforms.ToTensor(),
    transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
])


class ArrayCIFAR(torch.utils.data.Dataset):
    """torchvision.datasets.CIFAR10 over given arrays: uint8 (N, 32, 32, 3) -> PIL image -> transform."""

    def __init__(self, x: np.ndarray, y: np.ndarray, transform=ORIGINAL_TRANSFORM):
        self.data, self.targets, self.transform = x, [int(t) for t in y], transform  # targets: ints, as torchvision

    def __len__(self):
        return len(self.data)

    def __getitem__(self, index):
        img, target = self.data[index], self.targets[index]
        img = Image.fromarray(img)
        if self.transform is not None:
            img = self.transform(img)
        return img, target


# train_model and evaluate_model are the original's cells verbatim.
def train_model(model, train_loader, criterion, optimizer, device, norm_type):
    model.train()
    correct, total, loss_sum = 0, 0, 0.0
    for batch_idx, (inputs, labels) in enumerate(train_loader):
        inputs, labels = inputs.to(device), labels.to(device)
        optimizer.zero_grad()
        outputs = model(inputs)
        loss = criterion(outputs, labels)
        loss.backward()
        optimizer.step()

        loss_sum += loss.item()
        _, preds = outputs.max(1)
        correct += (preds == labels).sum().item()
        total += labels.size(0)

        # average and standard variation (the original passes norm_type='batch', so this never prints)
        if batch_idx == 0 and norm_type == 'batchnorm':  # first batch
            for module in model.modules():
                if isinstance(module, nn.BatchNorm2d):
                    print(f"[BN running_mean] mean={module.running_mean.mean().item():.4f}, "
                          f"std={module.running_var.mean().item():.4f}")
                    break

    return loss_sum / len(train_loader), 100. * correct / total


def evaluate_model(model, test_loader, criterion, device):
    model.eval()
    correct, total, loss_sum = 0, 0, 0.0
    with torch.no_grad():
        for inputs, labels in test_loader:
            inputs, labels = inputs.to(device), labels.to(device)
            outputs = model(inputs)
            loss = criterion(outputs, labels)
            loss_sum += loss.item()
            _, preds = outputs.max(1)
            correct += (preds == labels).sum().item()
            total += labels.size(0)
    return loss_sum / len(test_loader), 100. * correct / total


def loaders(splits: dict, batch_size: int, seed: int, num_workers: int = NUM_WORKERS) -> tuple:
    """The original's two DataLoaders, both at the training batch size; the shuffle is seeded for repeatability."""
    gen = torch.Generator().manual_seed(seed)
    train = torch.utils.data.DataLoader(ArrayCIFAR(*splits["train"]), batch_size=batch_size, shuffle=True,
                                        num_workers=num_workers, generator=gen)
    test = torch.utils.data.DataLoader(ArrayCIFAR(*splits["test"]), batch_size=batch_size, shuffle=False,
                                       num_workers=num_workers)
    return train, test


def run(norm: str, batch_size: int, seed: int, epochs: int, splits: dict, device="cpu", num_blocks: int = 4,
        verbose: bool = False) -> dict:
    """One (norm, batch size) run of the original's loop; per-epoch history with train/eval wall seconds."""
    device = torch.device(device)
    torch.manual_seed(seed)
    train_loader, test_loader = loaders(splits, batch_size, seed)
    criterion = nn.CrossEntropyLoss()
    model = Network(norm, num_blocks).to(device)
    optimizer = optim.Adam(model.parameters(), lr=LR)
    history, best_test_acc = [], 0
    for epoch in range(epochs):
        t0 = time.perf_counter()
        train_loss, train_acc = train_model(model, train_loader, criterion, optimizer, device, norm_type=norm)
        t1 = time.perf_counter()
        test_loss, test_acc = evaluate_model(model, test_loader, criterion, device)
        t2 = time.perf_counter()
        best_test_acc = max(best_test_acc, test_acc)
        if verbose:
            print(f"    Epoch {epoch + 1}/{epochs} - Test Acc: {test_acc:.2f}%")
        history.append({"epoch": epoch + 1, "train_loss": train_loss, "train_acc": train_acc,
                        "test_loss": test_loss, "test_acc": test_acc, "train_seconds": t1 - t0,
                        "eval_seconds": t2 - t1})
    return {"history": history, "best_acc": best_test_acc, "model": model}

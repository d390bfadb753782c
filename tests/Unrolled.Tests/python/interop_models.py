"""PyTorch twins of the networks declared in PyTorchInteropTests.cs: same attribute names, so that the
state_dict keys are the network's tensor names, and the same computation in eval mode."""
import torch
import torch.nn as nn
import torch.nn.functional as F


class LeNet5(nn.Module):
    """TorchLeNet5: conv1 6@5x5 pad 2 ReLU, maxpool 2, conv2 16@5x5 ReLU, maxpool 2, dense 120-84-10."""
    input_shape = (1, 28, 28)

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5, padding=2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.dense1 = nn.Linear(16 * 5 * 5, 120)
        self.dense2 = nn.Linear(120, 84)
        self.dense3 = nn.Linear(84, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        x = F.relu(self.dense1(x))
        x = F.relu(self.dense2(x))
        return self.dense3(x)


class BnNet(nn.Module):
    """TorchBnNet: explicit names (features, features_bn, hidden, classifier) mixed with default ones,
    whose ordinals count the named layers of the same kind too (conv2, bn2, bn3)."""
    input_shape = (3, 12, 12)

    def __init__(self):
        super().__init__()
        self.features = nn.Conv2d(3, 8, 3, padding=1)
        self.features_bn = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 12, 3, bias=False)
        self.bn2 = nn.BatchNorm2d(12)
        self.hidden = nn.Linear(12 * 4 * 4, 32, bias=False)
        self.bn3 = nn.BatchNorm1d(32)
        self.classifier = nn.Linear(32, 5)
        self.dropout = nn.Dropout(0.3)

    def forward(self, x):
        x = F.relu(self.features_bn(self.features(x)))
        x = F.max_pool2d(x, 2)
        x = F.leaky_relu(self.bn2(self.conv2(x)), 0.1)
        x = self.dropout(x)
        x = torch.flatten(x, 1)
        x = torch.tanh(self.bn3(self.hidden(x)))
        return self.classifier(x)


class MiscNet(nn.Module):
    """TorchMiscNet: Keras-style Same padding with stride 2 (asymmetric: 0 before, 1 after), Sigmoid,
    LRN, max pooling with padding, average pooling counting padded zeros, a rectangular kernel,
    global average pooling, LeakyReLU and Softmax."""
    input_shape = (2, 10, 10)

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(2, 6, 3, stride=2)
        self.lrn = nn.LocalResponseNorm(3, alpha=0.5, beta=0.6, k=2.0)
        self.conv2 = nn.Conv2d(6, 5, (2, 3))
        self.dense1 = nn.Linear(5, 4)

    def forward(self, x):
        x = torch.sigmoid(self.conv1(F.pad(x, (0, 1, 0, 1))))
        x = self.lrn(x)
        x = F.max_pool2d(x, 3, stride=1, padding=1)
        x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=True)
        x = self.conv2(x)
        x = x.mean(dim=(2, 3))
        x = F.leaky_relu(self.dense1(x), 0.01)
        return torch.softmax(x, dim=1)


MODELS = {"lenet5": LeNet5, "bnnet": BnNet, "miscnet": MiscNet}

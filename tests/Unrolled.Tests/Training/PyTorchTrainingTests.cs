using System;
using System.Collections.Generic;
using System.Linq;
using System.Diagnostics;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using System.Threading;
using Unrolled.Runtime;
using Unrolled.Tests.Harness;
using Unrolled.Tests.Reference;
using Unrolled.Tests.Training;
using Xunit;

namespace Unrolled.Tests
{
    /// <summary>
    /// Hand-checked examples against PyTorch 1.13: loss, gradients, SGD-with-momentum and Adam updates,
    /// batch-norm running statistics.
    /// </summary>
    public class PyTorchTrainingTests
    {
        // ---- Hand-checked examples against PyTorch ----------------------------------------------

        /*
        The expected values below were printed by this script (PyTorch 1.13, /usr/bin/python3). The inputs and
        weights are exact in float32: F(n, a, b, m, d)[i] = ((i*a + b) % m - m // 2) / d with d a power of two.

        # PyTorch 1.13, float64. Values F(n, a, b, m, d)[i] = ((i*a + b) % m - m // 2) / d are exact in float32.
        import torch, torch.nn as nn
        torch.set_default_dtype(torch.float64)

        def F(n, a, b, m, d, shape):
            return torch.tensor([((i * a + b) % m - m // 2) / d for i in range(n)]).reshape(shape)

        def fmt(name, t):
            print(f"{name} = [{', '.join('%.9g' % v for v in t.detach().flatten().tolist())}]")

        def params(net):
            return torch.cat([p.detach().flatten() for p in net.parameters()])

        def grads(net):
            return torch.cat([p.grad.flatten() for p in net.parameters()])

        def run(name, make, x, target, loss_fn, buffers=False):
            net = make(); net.train()
            loss = loss_fn(net(x), target); loss.backward()
            print(f"{name}.loss = {loss.item():.9g}")
            fmt(name + ".grad", grads(net))
            g = grads(net); assert g[g != 0].abs().min() > 1e-5, "tiny gradient"
            for opt_name, opt in (("sgd", lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9)),
                                  ("adam", lambda p: torch.optim.Adam(p, lr=0.01))):
                net = make(); net.train(); o = opt(net.parameters()); losses = []
                for _ in range(2):
                    o.zero_grad(); loss = loss_fn(net(x), target); loss.backward(); o.step(); losses.append(loss.item())
                print(f"{name}.{opt_name}.losses = {losses[0]:.9g}, {losses[1]:.9g}")
                fmt(f"{name}.{opt_name}.params", params(net))
                if buffers:
                    for k, v in net.state_dict().items():
                        if "running" in k or "num_batches" in k: fmt(f"{name}.{opt_name}.{k}", v.double())

        # (a) cross-entropy: Conv2d(1,2,3) ReLU MaxPool2d(2) Flatten Linear(8,3), batch 2 of 1x6x6
        def make_a():
            net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8, 3))
            with torch.no_grad():
                net[0].weight.copy_(F(18, 5, 1, 11, 16, (2, 1, 3, 3))); net[0].bias.copy_(torch.tensor([3 / 256, -5 / 256]))
                net[4].weight.copy_(F(24, 7, 2, 13, 16, (3, 8))); net[4].bias.copy_(F(3, 1, 0, 3, 8, (3,)))
            return net
        xa = F(72, 11, 3, 23, 8, (2, 1, 6, 6)); ya = torch.tensor([2, 0])
        pre = make_a()[0](xa)
        assert (pre != 0).all()
        win = pre.unfold(2, 2, 2).unfold(3, 2, 2).reshape(2, 2, 2, 2, 4).relu()
        for w in win.reshape(-1, 4):
            if w.max() > 0: assert (w == w.max()).sum() == 1, "max-pool tie"
        run("a", make_a, xa, ya, nn.CrossEntropyLoss())

        # (b1) MSE: Linear(4,3) Tanh Linear(3,2), batch 3
        def make_b1():
            net = nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 2))
            with torch.no_grad():
                net[0].weight.copy_(F(12, 5, 1, 11, 8, (3, 4))); net[0].bias.copy_(F(3, 2, 1, 5, 16, (3,)))
                net[2].weight.copy_(F(6, 3, 2, 7, 4, (2, 3))); net[2].bias.copy_(F(2, 1, 1, 3, 8, (2,)))
            return net
        run("b1", make_b1, F(12, 5, 2, 9, 4, (3, 4)), F(6, 3, 1, 7, 4, (3, 2)), nn.MSELoss())

        # (b2) MSE: Linear(4,3,bias=False) BatchNorm1d(3) Sigmoid Linear(3,2), batch 4
        def make_b2():
            net = nn.Sequential(nn.Linear(4, 3, bias=False), nn.BatchNorm1d(3), nn.Sigmoid(), nn.Linear(3, 2))
            with torch.no_grad():
                net[0].weight.copy_(F(12, 7, 3, 11, 8, (3, 4)))
                net[1].weight.copy_(torch.tensor([1.25, 0.75, -0.5])); net[1].bias.copy_(torch.tensor([0.25, -0.125, 0.5]))
                net[3].weight.copy_(F(6, 5, 1, 7, 4, (2, 3))); net[3].bias.copy_(F(2, 1, 0, 3, 8, (2,)))
            return net
        run("b2", make_b2, F(16, 7, 1, 13, 4, (4, 4)), F(8, 3, 2, 7, 4, (4, 2)), nn.MSELoss(), buffers=True)

        # (c) running statistics: Conv2d(2,3,3,padding=1,bias=False) BatchNorm2d(3) ReLU Flatten Linear(48,2), batch 3 of 2x4x4
        def make_c():
            net = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1, bias=False), nn.BatchNorm2d(3), nn.ReLU(), nn.Flatten(), nn.Linear(48, 2))
            with torch.no_grad():
                net[0].weight.copy_(F(54, 7, 2, 13, 16, (3, 2, 3, 3)))
                net[4].weight.copy_(F(96, 5, 3, 11, 32, (2, 48))); net[4].bias.copy_(F(2, 1, 0, 3, 8, (2,)))
            return net
        xc = F(96, 11, 5, 17, 8, (3, 2, 4, 4)); yc = torch.tensor([1, 0, 1])
        net = make_c(); o = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9); losses = []
        for _ in range(2):
            o.zero_grad(); loss = nn.CrossEntropyLoss()(net(xc), yc); loss.backward(); o.step(); losses.append(loss.item())
        print(f"c.sgd.losses = {losses[0]:.9g}, {losses[1]:.9g}")
        for k, v in net.state_dict().items():
            if "running" in k or "num_batches" in k: fmt(f"c.{k}", v.double())
        fmt("c.params", params(net))
        */

        /// <summary>((i·a + b) mod m − ⌊m/2⌋) / d, the script's F (exact in float32 for d a power of two).</summary>
        private static float[] F(int n, int a, int b, int m, int d) =>
            Enumerable.Range(0, n).Select(i => (float)((double)((i * a + b) % m - m / 2) / d)).ToArray();

        private static float[] Concat(params float[][] parts) => parts.SelectMany(p => p).ToArray();

        /// <summary>What the script printed for one network: the first step's loss and gradients, and the losses and
        /// parameters of two steps of SGD(lr 0.1, momentum 0.9) and of Adam(lr 0.01), each from the initial weights.</summary>
        private sealed record TorchExpectation(float Loss, float[] Gradients, float[] SgdLosses, float[] SgdParameters,
            float[] AdamLosses, float[] AdamParameters);

        private const double TorchTolerance = 1e-5;

        /// <summary>Loads <paramref name="initial"/> (and the default batch-norm buffers), runs <paramref name="gradients"/>
        /// once and two optimizer steps per optimizer, checking each against PyTorch. <paramref name="afterSteps"/> checks
        /// anything else (running statistics) after each optimizer's two steps.</summary>
        private static void CheckAgainstPyTorch(INetwork network, float[] initial, TorchExpectation expected,
            Func<float> gradients, Func<Optimizer, float> trainStep, Action<string>? afterSteps = null)
        {
            Assert.Equal(initial.Length, network.ParameterCount);
            float[] initialBuffers = network.Buffers.ToArray();
            void Reset()
            {
                initial.CopyTo(network.Parameters);
                initialBuffers.CopyTo(network.Buffers);
                network.Counters.Clear();
            }

            Reset();
            float loss = gradients();
            TrainingHelpers.AssertRelativelyClose(expected.Loss, loss, TorchTolerance, "loss");
            TrainingHelpers.AssertParametersClose(network, network.Gradients, expected.Gradients, TorchTolerance, "gradients");
            Assert.True(initial.AsSpan().SequenceEqual(network.Parameters), "ComputeGradients changed the parameters");

            foreach (var (name, optimizer, losses, parameters) in new[]
            {
                ("SGD(lr 0.1, momentum 0.9)", (Optimizer)Optimizer.Sgd(0.1f, momentum: 0.9f), expected.SgdLosses, expected.SgdParameters),
                ("Adam(lr 0.01)", Optimizer.Adam(0.01f), expected.AdamLosses, expected.AdamParameters),
            })
            {
                Reset();
                for (int step = 0; step < 2; step++)
                    TrainingHelpers.AssertRelativelyClose(losses[step], trainStep(optimizer), TorchTolerance, $"{name} step {step + 1} loss");
                TrainingHelpers.AssertParametersClose(network, network.Parameters, parameters, TorchTolerance, $"{name}: parameters after 2 steps");
                // The updates themselves, relative to their own size (sharper than the parameters).
                float[] actualDelta = network.Parameters.ToArray().Zip(initial, (p, p0) => p - p0).ToArray();
                float[] expectedDelta = parameters.Zip(initial, (p, p0) => p - p0).ToArray();
                double deltaError = TrainingHelpers.RelativeError(actualDelta, expectedDelta);
                Assert.True(deltaError <= 1e-4, $"{name}: the two steps' updates differ from PyTorch's by {deltaError:g3} of their size");
                afterSteps?.Invoke(name);
            }
        }

        [Fact]
        public void ConvCrossEntropyMatchesPyTorch()
        {
            var network = new TorchConvCe(0);
            Assert.Equal(
                "conv1.weight[2,1,3,3] conv1.bias[2] dense1.weight[3,8] dense1.bias[3]",
                string.Join(" ", network.Tensors.Select(t => $"{t.Name}[{string.Join(",", t.Shape)}]")));
            float[] initial = Concat(F(18, 5, 1, 11, 16), [3f / 256, -5f / 256], F(24, 7, 2, 13, 16), F(3, 1, 0, 3, 8));
            float[] input = F(72, 11, 3, 23, 8);
            int[] labels = [2, 0];
            var expected = new TorchExpectation(
                Loss: 0.793564888f,
                Gradients: [0.077580706f, -0.0278535612f, 0.0871656394f, 0.325475904f, 0.000901238967f, 0.00569370566f, -0.0853631614f, 0.0296560391f, -0.0757782281f, 0.135697097f, 0.0543849492f, 0.143089111f, -0.169419781f, 0.0765609896f, -0.491394899f, 0.0100328683f, 0.09873703f, 0.0174248818f, -0.076679467f, -0.0591361078f, -0.150804554f, -0.150115958f, -0.0521244556f, -0.0514358601f, -0.0866940028f, -0.0509539288f, -0.148945431f, -0.149634027f, 0.128141808f, 0.127284527f, 0.126883209f, 0.126025927f, 0.11269999f, 0.123041715f, 0.123443033f, 0.124300315f, 0.0226627454f, 0.0228314315f, -0.0747587532f, -0.0745900671f, -0.0260059868f, -0.0720877863f, 0.0255023984f, 0.0253337123f, -0.0881402245f, 0.109732051f, -0.0215918267f],
                SgdLosses: [0.793564888f, 0.721277565f],
                SgdParameters: [-0.271661592f, 0.0709219132f, -0.336896456f, -0.0952736429f, 0.312717321f, -0.0662954705f, 0.274831098f, -0.132987271f, 0.209596234f, -0.225696216f, 0.109169016f, -0.290229418f, 0.111793027f, -0.334430593f, 0.142179324f, 0.308868233f, -0.0905302015f, 0.24433503f, 0.0335976628f, -0.00326562735f, -0.20929819f, 0.229974562f, -0.177042012f, 0.260305299f, -0.105854188f, 0.320193607f, -0.0180075442f, 0.419661306f, -0.0354811609f, -0.409901588f, 0.0278403308f, -0.346964925f, 0.0944441832f, -0.283515451f, 0.153689534f, -0.221528767f, 0.244779351f, -0.132572974f, 0.336701681f, -0.0383403734f, 0.386410005f, 0.0258218436f, -0.385681989f, 0.0518674617f, -0.102172041f, -0.0297138834f, 0.131885924f],
                AdamLosses: [0.793564888f, 0.750545068f],
                AdamParameters: [-0.269959462f, 0.0825126627f, -0.332463365f, -0.0200099906f, 0.308303345f, -0.0811206547f, 0.270005056f, -0.14488027f, 0.207506456f, -0.207474003f, 0.104988531f, -0.269971716f, 0.0825085492f, -0.33249982f, 0.0200074171f, 0.292885949f, -0.0824884057f, 0.230113833f, 0.0317076688f, 0.000384106331f, -0.230079601f, 0.207450812f, -0.16916114f, 0.268331809f, -0.10553856f, 0.329823125f, -0.0425338711f, 0.394966916f, -0.0199446704f, -0.394940165f, 0.0425635283f, -0.332438557f, 0.105103242f, -0.269909465f, 0.167588101f, -0.207415638f, 0.230315932f, -0.144993269f, 0.332486286f, -0.0425140699f, 0.394811171f, 0.0199656387f, -0.394983667f, 0.0425140594f, -0.105262602f, -0.0199052825f, 0.144952828f]);
            CheckAgainstPyTorch(network, initial, expected,
                () => network.ComputeGradients(input, labels),
                optimizer => network.TrainStep(input, labels, optimizer));
        }

        [Fact]
        public void TanhMeanSquaredErrorMatchesPyTorch()
        {
            var network = new TorchTanhMse(0);
            Assert.Equal(
                "dense1.weight[3,4] dense1.bias[3] dense2.weight[2,3] dense2.bias[2]",
                string.Join(" ", network.Tensors.Select(t => $"{t.Name}[{string.Join(",", t.Shape)}]")));
            float[] initial = Concat(F(12, 5, 1, 11, 8), F(3, 2, 1, 5, 16), F(6, 3, 2, 7, 4), F(2, 1, 1, 3, 8));
            float[] input = F(12, 5, 2, 9, 4), targets = F(6, 3, 1, 7, 4);
            var expected = new TorchExpectation(
                Loss: 0.243027515f,
                Gradients: [0.00546848994f, 0.0729097518f, -0.0136871884f, 0.0537540734f, 0.00859051076f, -0.17292871f, 0.0446039953f, -0.136915226f, 0.0432994529f, 0.032098718f, 0.0307614522f, 0.0195607174f, -0.0766227132f, 0.144053938f, -0.0501520027f, 0.0943066158f, -0.0974070626f, -0.065903241f, 0.168400577f, -0.213465564f, -0.235938998f, 0.261169908f, -0.0630588558f],
                SgdLosses: [0.243027515f, 0.213379789f],
                SgdParameters: [-0.502014912f, 0.104970023f, -0.621659424f, -0.0146744893f, 0.623315016f, -0.0769686533f, 0.488326996f, -0.211956673f, 0.362607118f, -0.38406474f, 0.241040951f, -0.505630907f, -0.0410780506f, 0.0225479193f, -0.11126467f, -0.277999347f, 0.529014935f, -0.480892106f, 0.203998794f, -0.691810785f, 0.0650948966f, -0.0725211134f, 0.14051522f],
                AdamLosses: [0.243027515f, 0.222883289f],
                AdamParameters: [-0.519895935f, 0.105030142f, -0.605218133f, -0.0199647117f, 0.605766364f, -0.10502559f, 0.480093439f, -0.230023442f, 0.355015021f, -0.39495671f, 0.230003706f, -0.519964892f, -0.042517447f, 0.0425344102f, -0.105057603f, -0.270009469f, 0.520004041f, -0.480023466f, 0.230057975f, -0.73005385f, 0.0199678515f, -0.0199778872f, 0.144584114f]);
            CheckAgainstPyTorch(network, initial, expected,
                () => network.ComputeGradients(input, targets),
                optimizer => network.TrainStep(input, targets, optimizer));
        }

        [Fact]
        public void BatchNorm1dSigmoidMeanSquaredErrorMatchesPyTorch()
        {
            var network = new TorchBatchNormMse(0);
            Assert.Equal(
                "dense1.weight[3,4] bn1.weight[3] bn1.bias[3] bn1.running_mean[3] bn1.running_var[3] bn1.num_batches_tracked[] dense2.weight[2,3] dense2.bias[2]",
                string.Join(" ", network.Tensors.Select(t => $"{t.Name}[{string.Join(",", t.Shape)}]")));
            // PyTorch's initial buffers: running_mean 0, running_var 1, num_batches_tracked 0.
            Assert.Equal(new float[] { 0f, 0f, 0f }, TrainingHelpers.Tensor(network, "bn1.running_mean").ToArray());
            Assert.Equal(new float[] { 1f, 1f, 1f }, TrainingHelpers.Tensor(network, "bn1.running_var").ToArray());
            Assert.Equal(0, TrainingHelpers.Counter(network, "bn1.num_batches_tracked"));
            float[] initial = Concat(F(12, 7, 3, 11, 8), [1.25f, 0.75f, -0.5f], [0.25f, -0.125f, 0.5f], F(6, 5, 1, 7, 4), F(2, 1, 0, 3, 8));
            float[] input = F(16, 7, 1, 13, 4), targets = F(8, 3, 2, 7, 4);
            var expected = new TorchExpectation(
                Loss: 0.31015136f,
                Gradients: [0.0259222064f, -0.0359998859f, 0.0259222064f, -0.0686393364f, -0.0500986083f, 0.164470154f, -0.0500986083f, 1.12305196e-05f, -0.00555571536f, -0.00590146655f, -0.00555571536f, 0.0119757475f, -0.0185667135f, 0.104880462f, -0.00199225078f, -0.0142333831f, 0.10059978f, -0.0166626584f, 0.24797187f, 0.199664525f, 0.255942898f, -0.16732965f, -0.196811945f, -0.219699326f, 0.306302565f, -0.303269449f],
                SgdLosses: [0.31015136f, 0.261915197f],
                SgdParameters: [-0.257642474f, 0.635485009f, 0.117357526f, -0.354773788f, 0.514766866f, -0.0477664659f, -0.485233134f, 0.374132166f, -0.123369544f, -0.62326423f, 0.251630456f, -0.253514252f, 1.25554724f, 0.720431838f, -0.499843336f, 0.254004497f, -0.151760509f, 0.504746967f, -0.568098437f, 0.696043842f, 0.180356038f, -0.204877005f, -0.696239749f, 0.559665996f, -0.206722361f, 0.081603826f],
                AdamLosses: [0.31015136f, 0.284860378f],
                AdamParameters: [-0.269989721f, 0.644973309f, 0.105010279f, -0.355002387f, 0.52001351f, -0.0200101704f, -0.47998649f, 0.357557886f, -0.10501306f, -0.604990671f, 0.26998694f, -0.269991747f, 1.27001014f, 0.730018737f, -0.485805987f, 0.270002603f, -0.144955712f, 0.519991133f, -0.519984676f, 0.730038853f, 0.230030246f, -0.230024469f, -0.730030897f, 0.519970037f, -0.144961536f, 0.0199630462f]);
            var runningStatistics = new Dictionary<string, (float[] Mean, float[] Var)>
            {
                ["SGD(lr 0.1, momentum 0.9)"] = ([0.0789379919f, -0.0337515324f, -0.0460165043f], [0.939800349f, 0.856522365f, 0.975088042f]),
                ["Adam(lr 0.01)"] = ([0.0797343746f, -0.033718861f, -0.0462031245f], [0.940845032f, 0.854873335f, 0.976227896f]),
            };
            CheckAgainstPyTorch(network, initial, expected,
                () => network.ComputeGradients(input, targets),
                optimizer => network.TrainStep(input, targets, optimizer),
                afterSteps: name =>
                {
                    var (mean, variance) = runningStatistics[name];
                    Assert.True(TrainingHelpers.RelativeError(TrainingHelpers.Tensor(network, "bn1.running_mean"), mean) <= TorchTolerance,
                        $"{name}: running_mean [{string.Join(", ", TrainingHelpers.Tensor(network, "bn1.running_mean").ToArray())}], expected [{string.Join(", ", mean)}]");
                    Assert.True(TrainingHelpers.RelativeError(TrainingHelpers.Tensor(network, "bn1.running_var"), variance) <= TorchTolerance,
                        $"{name}: running_var [{string.Join(", ", TrainingHelpers.Tensor(network, "bn1.running_var").ToArray())}], expected [{string.Join(", ", variance)}]");
                    Assert.Equal(2, TrainingHelpers.Counter(network, "bn1.num_batches_tracked"));
                });
        }

        [Fact]
        public void BatchNorm2dRunningStatisticsMatchPyTorch()
        {
            var network = new TorchBatchNorm2d(0);
            Assert.Equal(
                "conv1.weight[3,2,3,3] bn1.weight[3] bn1.bias[3] bn1.running_mean[3] bn1.running_var[3] bn1.num_batches_tracked[] dense1.weight[2,48] dense1.bias[2]",
                string.Join(" ", network.Tensors.Select(t => $"{t.Name}[{string.Join(",", t.Shape)}]")));
            // Batch norm's γ = 1 and β = 0, as PyTorch initialises them.
            Assert.Equal(new float[] { 1f, 1f, 1f }, TrainingHelpers.Tensor(network, "bn1.weight").ToArray());
            Assert.Equal(new float[] { 0f, 0f, 0f }, TrainingHelpers.Tensor(network, "bn1.bias").ToArray());
            float[] initial = Concat(F(54, 7, 2, 13, 16), [1f, 1f, 1f], [0f, 0f, 0f], F(96, 5, 3, 11, 32), F(2, 1, 0, 3, 8));
            initial.CopyTo(network.Parameters);
            float[] input = F(96, 11, 5, 17, 8);
            int[] labels = [1, 0, 1];
            var sgd = Optimizer.Sgd(0.1f, momentum: 0.9f);

            float loss1 = network.TrainStep(input, labels, sgd);
            Assert.Equal(1, TrainingHelpers.Counter(network, "bn1.num_batches_tracked"));
            float loss2 = network.TrainStep(input, labels, sgd);

            TrainingHelpers.AssertRelativelyClose(0.686395916, loss1, TorchTolerance, "step 1 loss");
            TrainingHelpers.AssertRelativelyClose(0.448099908, loss2, TorchTolerance, "step 2 loss");
            float[] mean = [-0.00399432194f, 0.00606090119f, -0.00201178989f];
            float[] variance = [0.851582362f, 0.857488475f, 0.838445412f];
            // The means are small; compare them on the scale of the variances (absolute 1e-5 · ~1).
            Assert.True(TrainingHelpers.RelativeError(TrainingHelpers.Tensor(network, "bn1.running_mean"), mean, floor: 0.1) <= TorchTolerance,
                $"running_mean [{string.Join(", ", TrainingHelpers.Tensor(network, "bn1.running_mean").ToArray())}], expected [{string.Join(", ", mean)}]");
            Assert.True(TrainingHelpers.RelativeError(TrainingHelpers.Tensor(network, "bn1.running_var"), variance) <= TorchTolerance,
                $"running_var [{string.Join(", ", TrainingHelpers.Tensor(network, "bn1.running_var").ToArray())}], expected [{string.Join(", ", variance)}]");
            Assert.Equal(2, TrainingHelpers.Counter(network, "bn1.num_batches_tracked"));
            float[] parameters = [-0.24972262f, 0.223521669f, -0.198112555f, 0.281177778f, -0.180515252f, 0.343603148f, -0.106657848f, 0.402590278f, 0.0118699093f, -0.366675064f, 0.0439181525f, -0.291382857f, 0.0995481453f, -0.21679583f, 0.154552073f, -0.166191902f, 0.205378116f, -0.0916721994f, 0.348394417f, -0.0675629171f, 0.368040898f, -0.0131542712f, -0.391606611f, 0.050600101f, -0.339824566f, 0.190917434f, -0.269049724f, 0.174997472f, -0.160086774f, 0.248018367f, -0.121942404f, 0.316662833f, -0.0853586746f, 0.360220253f, -0.0150600098f, -0.305364558f, 0.0621705715f, -0.322611611f, 0.12473856f, -0.275217389f, 0.217708574f, -0.17207266f, 0.268424121f, -0.121224932f, 0.300422201f, -0.0494450977f, 0.375090833f, 0.00554760665f, -0.365619483f, 0.0459074814f, -0.313340593f, 0.0885461257f, -0.235586287f, 0.189210683f, 1.01279391f, 0.994209285f, 1.00733404f, 0.0414869855f, 0.00745659956f, 0.00391550268f, -0.0697560408f, 0.0505091269f, -0.114201747f, 0.0503336268f, -0.178131501f, 0.00532113068f, -0.141822581f, -0.0727756588f, 0.153052597f, -0.0667420746f, 0.0869087965f, -0.0341639161f, 0.0744797905f, -0.1339963f, 0.102369387f, -0.173631313f, 0.0600028117f, -0.179122459f, 0.00175353926f, 0.117936574f, -0.0456888294f, 0.0584058447f, -0.127143388f, 0.102693795f, -0.139172339f, -0.0341259972f, -0.0850051469f, 0.0427793156f, -0.199828714f, 0.0231037401f, 0.134881396f, -0.0631658939f, 0.096032037f, -0.0675213267f, 0.0904835819f, -0.154789088f, 0.123425981f, -0.125f, -0.0300861811f, -0.195551822f, 0.0406628546f, 0.15625f, -0.0312760017f, 0.0810139806f, -0.0576989207f, 0.0412310816f, -0.132479242f, 0.113550372f, -0.117743959f, 0.0744908731f, -0.135798253f, 0.0121663732f, 0.209381501f, -0.00532113068f, 0.110572581f, 0.0102756588f, 0.0969474034f, -0.0582579254f, 0.100591204f, -0.153336084f, 0.0505202095f, -0.1160037f, -0.039869387f, 0.204881313f, -0.0600028117f, 0.147872459f, -0.0642535393f, 0.132063426f, -0.0793111706f, 0.129094155f, -0.0603566123f, 0.0223062046f, -0.110827661f, 0.0966259972f, 0.116255147f, -0.0427793156f, 0.168578714f, -0.0856037401f, 0.115118604f, -0.0618341061f, 0.091467963f, -0.119978673f, 0.0345164181f, -0.0952109119f, -0.0609259806f, 0.15625f, 0.0300861811f, 0.164301822f, -0.103162855f, 0.09375f, -0.0937239983f, 0.106486019f, -0.129801079f, 0.0837689184f, -0.117520758f, -0.0510503725f, -0.172179078f, 0.0471790775f];
            TrainingHelpers.AssertParametersClose(network, network.Parameters, parameters, TorchTolerance, "parameters after 2 SGD steps");

            // Inference afterwards normalises with the running statistics: the naive reference (harness), given the
            // trained parameters and the buffers, computes the same outputs.
            var decl = new NetDecl(new Shape(2, 4, 4), new[]
            {
                LayerSpec.Conv(3, 3, padding: 1, bias: false), LayerSpec.Of(LayerKind.BatchNorm), LayerSpec.Of(LayerKind.ReLU),
                LayerSpec.Of(LayerKind.Flatten), LayerSpec.Dense(2),
            });
            var output = new float[3 * 2];
            network.Forward(input, output);
            double[] ToDouble(ReadOnlySpan<float> values) => values.ToArray().Select(v => (double)v).ToArray();
            double[] reference = new NaiveNetwork(decl).Forward(ToDouble(network.Parameters), ToDouble(network.Buffers), ToDouble(input));
            double inferenceError = Parity.Error(output, reference, 1.0, out _);
            Assert.True(inferenceError <= Parity.ForwardTolerance, $"inference after training differs from the reference by {inferenceError:g3}");
        }
    }
}

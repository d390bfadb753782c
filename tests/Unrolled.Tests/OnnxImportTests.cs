using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text;
using Google.Protobuf;
using Unrolled.Formats.Onnx.Proto;
using Unrolled.Tests.Harness;
using Unrolled.Tests.Interop;
using Unrolled.Tests.Onnx;
using Xunit;
using Xunit.Abstractions;

namespace Unrolled.Tests;

/// <summary>
/// ONNX import: PyTorch twins of the examples' and tests' networks exported with torch.onnx.export, imported,
/// compiled by the generator and compared with PyTorch's outputs; Unrolled → ONNX → import round trips; bad input;
/// the command line.
/// </summary>
public sealed class OnnxImportTests : IDisposable
{
    private const float Tolerance = 1e-5f;
    private readonly ITestOutputHelper _out;
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "unrolled-onnx-import-" + Guid.NewGuid().ToString("N"));

    public OnnxImportTests(ITestOutputHelper output)
    {
        _out = output;
        Directory.CreateDirectory(_dir);
    }

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    private static string Combined(string ns, IEnumerable<OnnxImportResult> results)
        => "using Unrolled;\n\nnamespace " + ns + "\n{\n" + string.Concat(results.Select(r => r.Declaration + "\n")) + "}\n";

    private static float[] ReadFloats(string path)
    {
        byte[] b = File.ReadAllBytes(path);
        var f = new float[b.Length / 4];
        for (int i = 0; i < f.Length; i++) f[i] = System.Buffers.Binary.BinaryPrimitives.ReadSingleLittleEndian(b.AsSpan(i * 4));
        return f;
    }

    // ---------------------------------------------------------------------------------------------
    // PyTorch → ONNX → Unrolled
    // ---------------------------------------------------------------------------------------------

    [TorchFact]
    public void PyTorchTwinsImportCompileAndComputeWhatPyTorchComputes()
    {
        string script = Path.Combine(_dir, "onnx_twins.py");
        File.WriteAllText(script, TorchOnnxTwins.Script);
        var (code, log) = PyTorch.Run(new[] { script, _dir });
        Assert.True(code == 0, "onnx_twins.py failed:\n" + log);

        var twins = File.ReadAllLines(Path.Combine(_dir, "manifest.txt")).Where(l => l.Length > 0)
            .Select(l => l.Split(' ')).Select(p => (Name: p[0], Batch: int.Parse(p[1], CultureInfo.InvariantCulture))).ToList();
        Assert.True(twins.Count >= 13, $"only {twins.Count} twins exported");
        var results = twins.ToDictionary(t => t.Name, t => OnnxImport.Import(Path.Combine(_dir, t.Name + ".onnx"), "Twin_" + t.Name, "OnnxImported"));
        foreach (var r in results.Values) _out.WriteLine(r.Declaration);

        // What the patterns became.
        Assert.Contains("[LocalResponseNorm(5, Alpha = 0.0001, Beta = 0.75, K = 2.0)]", results["alexnet"].Declaration); // PyTorch's written-out LRN
        Assert.Equal(2, CountOf(results["keras_same"].Declaration, "Padding = Padding.Same")); // Pad → Same (Conv stride 2, MaxPool)
        Assert.Contains("[Dense(5)]", results["keras_same"].Declaration); // MatMul + Add
        Assert.Equal(results["keras_same"].Declaration.Replace("Twin_keras_same;", ""), results["keras_same_op9"].Declaration.Replace("Twin_keras_same_op9;", "")); // opset 9: Pad's pads as an attribute
        Assert.Contains("[LocalResponseNorm(3, Alpha = 0.5, Beta = 0.6, K = 2.0)]", results["misc"].Declaration); // opset 11
        Assert.Contains("[BatchNorm(Name = \"bn\")]", results["vgg_bn1d"].Declaration);
        Assert.Contains("epsilon 0.001 folded into running_var", results["vgg_bn1d"].Source); // Keras' epsilon, moved into the variance
        Assert.Contains("[Conv2D(6, 5, Padding = 2, Activation = Activation.ReLU)]", results["kerasbaseline"].Declaration); // a symmetric Pad folded into the Conv (PyTorch folds the BatchNorm into it)
        Assert.Contains("Name = \"fc1\"", results["simpleconvnet"].Declaration); // initializer names kept
        Assert.Contains("[Softmax]", results["softmax_avg"].Declaration);
        Assert.Contains("[AvgPool2D(3, Stride = 2, Padding = 1)]", results["odd_sigmoid"].Declaration);

        var assembly = NetworkCompiler.CompileAndLoad(Combined("OnnxImported", results.Values));
        double worst = 0;
        var failures = new List<string>();
        foreach (var (name, batch) in twins)
        {
            INetwork net = NetworkCompiler.Create(assembly, "OnnxImported.Twin_" + name);
            net.Load(new MemoryStream(results[name].Weights));
            float[] input = ReadFloats(Path.Combine(_dir, name + ".input.bin"));
            float[] expected = ReadFloats(Path.Combine(_dir, name + ".output.bin"));
            Assert.Equal(batch * net.InputSize, input.Length);
            Assert.Equal(batch * net.OutputSize, expected.Length);
            var actual = new float[expected.Length];
            net.Forward(input, actual);
            double diff = expected.Zip(actual, (e, a) => (double)Math.Abs(e - a)).Max();
            _out.WriteLine($"{name}: max |PyTorch − imported| = {diff:E2}");
            worst = Math.Max(worst, diff);
            if (!(diff <= Tolerance)) failures.Add($"{name}: {diff:E3}");
        }
        _out.WriteLine($"largest difference: {worst:E3}");
        Assert.True(failures.Count == 0, "outputs differ from PyTorch's by more than 1e-5: " + string.Join("; ", failures));
    }

    private static int CountOf(string text, string part)
    {
        int n = 0;
        for (int i = text.IndexOf(part, StringComparison.Ordinal); i >= 0; i = text.IndexOf(part, i + 1, StringComparison.Ordinal)) n++;
        return n;
    }

    // ---------------------------------------------------------------------------------------------
    // Unrolled → ONNX → Unrolled
    // ---------------------------------------------------------------------------------------------

    /// <summary>Declarations in the importer's canonical form (arguments, Stride, Padding, Bias, Activation, Name).</summary>
    private static readonly (string Name, string Attributes)[] RoundTrips =
    {
        ("LeNet", """
            [Network(1, 28, 28)]
            [Conv2D(6, 5, Padding = 2, Activation = Activation.ReLU)]
            [MaxPool2D(2)]
            [Conv2D(16, 5, Activation = Activation.ReLU)]
            [MaxPool2D(2)]
            [Dense(120, Activation = Activation.ReLU)]
            [Dense(84, Activation = Activation.ReLU)]
            [Dense(10)]
            """),
        ("SameNorms", """
            [Network(3, 13, 11)]
            [Conv2D(5, 4, 3, Stride = 2, Padding = Padding.Same, Activation = Activation.LeakyReLU)]
            [BatchNorm]
            [Conv2D(6, 3, Padding = Padding.Same, Bias = false, Activation = Activation.Tanh, Name = "features")]
            [BatchNorm(Name = "norm")]
            [MaxPool2D(3, Stride = 2, Padding = Padding.Same)]
            [Flatten]
            [Dense(12, Activation = Activation.Sigmoid)]
            [BatchNorm]
            [LeakyReLU(0.2)]
            [Dense(4, Bias = false)]
            [Softmax]
            """),
        ("PoolsAndLrn", """
            [Network(2, 12, 12)]
            [Conv2D(4, 3, Padding = 1)]
            [ReLU]
            [AvgPool2D(3, Stride = 2, Padding = 1)]
            [LocalResponseNorm(3, Alpha = 0.5, Beta = 0.6, K = 2.0)]
            [Sigmoid]
            [AvgPool2D(2, Padding = Padding.Same)]
            [Conv2D(6, 2, Name = "mixer")]
            [LocalResponseNorm(4, Alpha = 0.5, Beta = 0.75, K = 1.0)]
            [Tanh]
            [GlobalAvgPool2D]
            [Dense(3)]
            """),
        ("Vector", """
            [Network(20)]
            [Dense(16, Activation = Activation.Tanh, Name = "hidden")]
            [BatchNorm]
            [Dense(5)]
            """),
    };

    private static string Normalized(string declaration)
        => string.Join("\n", declaration.Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0));

    [Fact]
    public void UnrolledToOnnxAndBackGivesTheSameDeclarationAndIdenticalWeights()
    {
        string Source(string ns, IEnumerable<(string Name, string Decl)> decls)
            => "using Unrolled;\n\nnamespace " + ns + "\n{\n" + string.Concat(decls.Select(d => d.Decl + "\n")) + "}\n";
        var originals = NetworkCompiler.CompileAndLoad(Source("RoundTripOriginals",
            RoundTrips.Select(r => (r.Name, r.Attributes + "\npublic partial class " + r.Name + ";"))));

        var rng = new Random(5);
        var nets = new List<INetwork>();
        var imported = new List<OnnxImportResult>();
        foreach (var (name, attributes) in RoundTrips)
        {
            INetwork net = NetworkCompiler.Create(originals, "RoundTripOriginals." + name, seed: 3);
            Span<float> buffers = net.Buffers;
            foreach (TensorInfo t in net.Tensors.Where(t => t.Kind == TensorKind.Buffer))
                for (int i = 0; i < t.Length; i++)
                    buffers[t.Offset + i] = t.Name.EndsWith("running_var", StringComparison.Ordinal) ? 0.5f + (float)rng.NextDouble() : (float)rng.NextDouble() - 0.5f;
            nets.Add(net);
            var onnx = new MemoryStream();
            net.SaveOnnx(onnx);
            OnnxImportResult r = OnnxImport.Import(onnx.ToArray(), name, "RoundTripImported", name + ".onnx");
            Assert.Equal(Normalized(attributes + "\npublic partial class " + name + ";"), Normalized(r.Declaration));
            imported.Add(r);
        }

        var back = NetworkCompiler.CompileAndLoad(Combined("RoundTripImported", imported));
        for (int k = 0; k < nets.Count; k++)
        {
            INetwork original = nets[k];
            INetwork copy = NetworkCompiler.Create(back, "RoundTripImported." + RoundTrips[k].Name, seed: 99);
            copy.Load(new MemoryStream(imported[k].Weights));
            Assert.Equal(original.Tensors.Select(t => t.Name), copy.Tensors.Select(t => t.Name));
            Assert.True(original.Parameters.SequenceEqual(copy.Parameters), $"{RoundTrips[k].Name}: parameters differ");
            Assert.True(original.Buffers.SequenceEqual(copy.Buffers), $"{RoundTrips[k].Name}: buffers differ");

            var input = new float[2 * original.InputSize];
            for (int i = 0; i < input.Length; i++) input[i] = (float)rng.NextDouble() * 2 - 1;
            var a = new float[2 * original.OutputSize];
            var b = new float[a.Length];
            original.Forward(input, a);
            copy.Forward(input, b);
            double diff = a.Zip(b, (x, y) => (double)Math.Abs(x - y)).Max();
            _out.WriteLine($"{RoundTrips[k].Name}: max |original − round trip| = {diff:E2}");
            Assert.True(diff <= Tolerance, $"{RoundTrips[k].Name}: outputs differ by {diff}");
        }
    }

    // ---------------------------------------------------------------------------------------------
    // Bad input
    // ---------------------------------------------------------------------------------------------

    [Fact]
    public void TheSmallModelImports()
    {
        OnnxImportResult r = OnnxImport.Import(OnnxModels.Bytes(OnnxModels.Small()), "Small");
        Assert.Equal(Normalized("""
            [Network(1, 4, 4)]
            [Conv2D(2, 3, Activation = Activation.ReLU, Name = "c")]
            [Flatten]
            [Dense(3, Name = "fc")]
            public partial class Small;
            """), Normalized(r.Declaration));
        Assert.Equal(new[] { "c.bias", "c.weight", "fc.bias", "fc.weight" }, r.Tensors.Keys.OrderBy(k => k, StringComparer.Ordinal));
    }

    /// <summary>Imports <paramref name="bytes"/> through the file API into an empty directory: it must refuse with a
    /// message containing every one of <paramref name="expected"/> and leave the directory empty.</summary>
    private OnnxImportException Refused(byte[] bytes, params string[] expected)
    {
        string model = Path.Combine(_dir, "bad.onnx"), output = Path.Combine(_dir, "out-" + Guid.NewGuid().ToString("N"));
        File.WriteAllBytes(model, bytes);
        var e = Assert.Throws<OnnxImportException>(() => OnnxImport.ImportToDirectory(model, "Bad", null, output));
        foreach (string part in expected) Assert.Contains(part, e.Message, StringComparison.OrdinalIgnoreCase);
        Assert.True(!Directory.Exists(output) || Directory.GetFileSystemEntries(output).Length == 0, "something was written");
        return e;
    }

    private OnnxImportException Refused(Action<ModelProto> mutate, params string[] expected)
    {
        ModelProto m = OnnxModels.Small();
        mutate(m);
        return Refused(OnnxModels.Bytes(m), expected);
    }

    [Fact]
    public void EmptyTruncatedAndForeignFilesAreRefused()
    {
        byte[] good = OnnxModels.Bytes(OnnxModels.Small());
        Refused(Array.Empty<byte>(), "empty");
        Refused(good[..(good.Length * 2 / 3)], "truncated or corrupt");
        Refused(Encoding.ASCII.GetBytes("GIF89a not a model"), "not an ONNX model", "magic");
        Refused(new byte[] { (byte)'P', (byte)'K', 3, 4, 0, 0, 0, 0 }, "not an ONNX model", "zip");
        Refused(new byte[] { 0x89, (byte)'H', (byte)'D', (byte)'F', 0x0d, 0x0a, 0x1a, 0x0a }, "HDF5");
        var safetensors = new MemoryStream();
        safetensors.Write(BitConverter.GetBytes(16L));
        safetensors.Write(Encoding.ASCII.GetBytes("{\"a\":1}         "));
        Refused(safetensors.ToArray(), "safetensors");
        Refused(new byte[] { 0x08, 0x07 }, "no graph"); // ir_version 7 and nothing else
    }

    [Fact]
    public void RandomCorruptionNeverCrashes()
    {
        byte[] good = OnnxModels.Bytes(OnnxModels.Small());
        var rng = new Random(11);
        int refused = 0;
        for (int trial = 0; trial < 400; trial++)
        {
            byte[] bad = (byte[])good.Clone();
            int flips = 1 + rng.Next(4);
            for (int f = 0; f < flips; f++) bad[rng.Next(bad.Length)] = (byte)rng.Next(256);
            if (rng.Next(3) == 0) bad = bad[..rng.Next(1, bad.Length)];
            try
            {
                OnnxImportResult r = OnnxImport.Import(bad, "Fuzz");
                Assert.NotEmpty(r.Declaration); // a flip in a weight value still imports
            }
            catch (OnnxImportException)
            {
                refused++;
            }
        }
        Assert.True(refused > 50, $"only {refused} of 400 corrupted files were refused");
    }

    [Fact]
    public void GraphProblemsAreRefusedNamingTheNode()
    {
        Refused(m =>
        {
            // relu → loop_a → loop_b → loop_a
            m.Graph.Node.Add(OnnxModels.Node("Relu", "loop_a", new[] { "loop_b_out" }, new[] { "loop_a_out" }));
            m.Graph.Node.Add(OnnxModels.Node("Relu", "loop_b", new[] { "loop_a_out" }, new[] { "loop_b_out" }));
        }, "cycle", "Relu");
        Refused(m =>
        {
            // The convolution's output feeds both the Relu and a Sigmoid that are added: a residual-style branch.
            NodeProto relu = OnnxModels.Find(m, "relu");
            relu.Output[0] = "r_a";
            m.Graph.Node.Add(OnnxModels.Node("Sigmoid", "side", new[] { "c_out" }, new[] { "r_b" }));
            m.Graph.Node.Add(OnnxModels.Node("Add", "join", new[] { "r_a", "r_b" }, new[] { "r_out" }));
        }, "branch");
        var e = Refused(m => OnnxModels.Find(m, "relu").OpType = "Elu", "node 'relu'", "(Elu)", "not supported");
        Assert.Equal("relu", e.NodeName);
        Assert.Equal("Elu", e.Operator);
        Refused(m => OnnxModels.Find(m, "c").Attribute.Add(OnnxModels.Int("group", 2)), "node 'c'", "(Conv)", "group");
        Refused(m => OnnxModels.Find(m, "c").Attribute.Add(OnnxModels.Ints("dilations", 2, 2)), "node 'c'", "dilat");
        Refused(m => OnnxModels.Find(m, "c").Attribute.Add(OnnxModels.Ints("pads", 0, 0, 1, 1)), "node 'c'", "asymmetric padding");
        Refused(m => OnnxModels.Find(m, "c").Attribute.Add(OnnxModels.Ints("strides", 1, 2)), "node 'c'", "strides");
        Refused(m => OnnxModels.Find(m, "fc").Input[1] = "f_out", "node 'fc'", "branch");
        Refused(m => OnnxModels.Find(m, "fc").Input[1] = "nowhere", "node 'fc'", "'nowhere'");
        Refused(m => m.Graph.Node.Add(OnnxModels.Node("Relu", "extra", new[] { "input" }, new[] { "dangling" })), "branch");
        Refused(m => m.Graph.Input.Add(OnnxModels.Value("second", -1, 3)), "2 inputs");
        Refused(m =>
        {
            NodeProto relu = OnnxModels.Find(m, "relu");
            relu.OpType = "LRN";
            relu.Attribute.Add(OnnxModels.Int("size", 2));
        }, "node 'relu' (LRN)", "even size");
        Refused(m =>
        {
            NodeProto relu = OnnxModels.Find(m, "relu");
            relu.OpType = "Transpose";
            relu.Attribute.Add(OnnxModels.Ints("perm", 0, 2, 3, 1));
        }, "node 'relu' (Transpose)", "channels-last");
        Refused(m =>
        {
            NodeProto relu = OnnxModels.Find(m, "relu");
            relu.OpType = "BatchNormalization";
            relu.Input.Add("c.bias"); relu.Input.Add("c.bias"); relu.Input.Add("c.bias"); relu.Input.Add("c.bias");
            relu.Attribute.Add(new AttributeProto { Name = "epsilon", Type = AttributeProto.Types.AttributeType.Float, F = 1e-7f });
        }, "epsilon");
    }

    [Fact]
    public void PadsAreFoldedWhereExpressibleAndRefusedWhereNot()
    {
        // The Small model's convolution gives 2 × 2; a 3 × 3 window of stride 2 on it is Keras' Same with pads
        // (top 0, left 0, bottom 1, right 1), which a Pad node spells out.
        AttributeProto[] pool = { OnnxModels.Ints("kernel_shape", 3, 3), OnnxModels.Ints("strides", 2, 2) };
        OnnxImportResult max = OnnxImport.Import(OnnxModels.Bytes(OnnxModels.WithPad("MaxPool", 0, 0, 1, 1, false, pool)), "P");
        Assert.Contains("[MaxPool2D(3, Stride = 2, Padding = Padding.Same)]", max.Declaration); // zero Pad after a ReLU: never wins
        OnnxImportResult sym = OnnxImport.Import(OnnxModels.Bytes(OnnxModels.WithPad("AveragePool", 1, 1, 1, 1, false, pool)), "P");
        Assert.Contains("[AvgPool2D(3, Stride = 2, Padding = 1)]", sym.Declaration); // counted zeros: integer padding
        Refused(OnnxModels.Bytes(OnnxModels.WithPad("AveragePool", 0, 0, 1, 1, false, pool)), "node 'pool' (AveragePool)", "padding");
        Refused(OnnxModels.Bytes(OnnxModels.WithPad("MaxPool", 0, 0, 1, 1, true, pool)), "node 'pool' (MaxPool)", "negative");
        Refused(OnnxModels.Bytes(OnnxModels.WithPad("Relu", 0, 0, 1, 1)), "node 'pool' (Relu)", "Pad");
    }

    [Fact]
    public void BadTensorsShapesAndOpsetsAreRefused()
    {
        Refused(m => m.Graph.Initializer.First(t => t.Name == "fc.weight").Dims[1] = 9, "fc.weight", "bytes of data");
        Refused(m =>
        {
            // A lying length: dims claiming 2^40 elements over a 96-byte payload is refused before any allocation.
            TensorProto w = m.Graph.Initializer.First(t => t.Name == "fc.weight");
            w.Dims.Clear();
            w.Dims.Add(1 << 20);
            w.Dims.Add(1 << 20);
        }, "fc.weight", "more than");
        Refused(m =>
        {
            TensorProto w = m.Graph.Initializer.First(t => t.Name == "fc.weight");
            w.RawData = ByteString.Empty;
            w.FloatData.Add(1f);
        }, "fc.weight", "1 float values");
        Refused(m => m.Graph.Initializer.First(t => t.Name == "c.bias").Dims[0] = -2, "negative");
        Refused(m =>
        {
            TensorProto w = m.Graph.Initializer.First(t => t.Name == "c.weight");
            w.RawData = ByteString.Empty;
            w.DataLocation = TensorProto.Types.DataLocation.External;
        }, "external");
        Refused(m => m.Graph.Input[0].Type.TensorType.Shape.Dim[2].DimValue = 1L << 40, "absurd", "H");
        Refused(m => m.Graph.Input[0].Type.TensorType.Shape.Dim[3] = new TensorShapeProto.Types.Dimension { DimParam = "width" }, "dynamic", "W");
        Refused(m => m.Graph.Input[0].Type.TensorType.Shape.Dim.RemoveAt(3), "rank 3");
        Refused(m => m.OpsetImport[0].Version = 6, "opset 6", "too old");
        Refused(m => m.OpsetImport[0].Version = OnnxImport.MaxOpset + 1, "too new");
        Refused(m => m.OpsetImport.Clear(), "no opset");
        Refused(m => m.IrVersion = 2, "IR version 2");
    }

    // ---------------------------------------------------------------------------------------------
    // The command line
    // ---------------------------------------------------------------------------------------------

    private static (int Code, string Out, string Err) Cli(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = OnnxImportCommand.Run(args, o, e);
        return (code, o.ToString(), e.ToString());
    }

    [Fact]
    public void CommandLineWritesBothFilesOrNothing()
    {
        var help = Cli("--help");
        Assert.Equal(0, help.Code);
        Assert.Contains("unrolled import <model.onnx> --class <Name>", help.Out);
        Assert.Equal(OnnxImportCommand.Usage, Cli().Code);
        Assert.Equal(OnnxImportCommand.Usage, Cli("export", "x.onnx").Code);
        Assert.Equal(OnnxImportCommand.Usage, Cli("import", "x.onnx").Code); // no --class
        Assert.Equal(OnnxImportCommand.Usage, Cli("import", "x.onnx", "--class").Code);
        Assert.Equal(OnnxImportCommand.Usage, Cli("import", "x.onnx", "--class", "X", "--bogus").Code);

        string model = Path.Combine(_dir, "small.onnx"), output = Path.Combine(_dir, "generated");
        File.WriteAllBytes(model, OnnxModels.Bytes(OnnxModels.Small()));
        var bad = Cli("import", model, "--class", "not-a-name", "--out", output);
        Assert.Equal(OnnxImportCommand.Refused, bad.Code);
        Assert.Contains("not a valid C# class name", bad.Err);
        var missing = Cli("import", Path.Combine(_dir, "missing.onnx"), "--class", "X", "--out", output);
        Assert.Equal(OnnxImportCommand.Refused, missing.Code);
        Assert.False(Directory.Exists(output));

        var ok = Cli("import", model, "--class", "SmallNet", "--namespace", "My.Models", "--out", output);
        Assert.True(ok.Code == 0, ok.Err);
        Assert.Equal(new[] { "SmallNet.cs", "SmallNet.safetensors" }, Directory.GetFiles(output).Select(Path.GetFileName).OrderBy(f => f, StringComparer.Ordinal));
        string cs = File.ReadAllText(Path.Combine(output, "SmallNet.cs"));
        Assert.StartsWith("// Imported from small.onnx", cs);
        Assert.Contains("namespace My.Models;", cs);
        Assert.Contains("public partial class SmallNet;", cs);

        // A refused model next to earlier output leaves that output as it was.
        ModelProto grouped = OnnxModels.Small();
        OnnxModels.Find(grouped, "c").Attribute.Add(OnnxModels.Int("group", 2));
        File.WriteAllBytes(model, OnnxModels.Bytes(grouped));
        var refused = Cli("import", model, "--class", "SmallNet", "--out", output);
        Assert.Equal(OnnxImportCommand.Refused, refused.Code);
        Assert.Contains("node 'c' (Conv)", refused.Err);
        Assert.Contains("nothing was written", refused.Err);
        Assert.Equal(cs, File.ReadAllText(Path.Combine(output, "SmallNet.cs")));
        Assert.Equal(2, Directory.GetFileSystemEntries(output).Length);
    }

    [Fact]
    public void TheWrittenFilesCompileAndLoad()
    {
        string model = Path.Combine(_dir, "small.onnx"), output = Path.Combine(_dir, "generated");
        File.WriteAllBytes(model, OnnxModels.Bytes(OnnxModels.Small()));
        Assert.Equal(0, Cli("import", model, "--class", "SmallNet", "--namespace", "CliModels", "--out", output).Code);
        var assembly = NetworkCompiler.CompileAndLoad(File.ReadAllText(Path.Combine(output, "SmallNet.cs")));
        INetwork net = NetworkCompiler.Create(assembly, "CliModels.SmallNet");
        net.Load(Path.Combine(output, "SmallNet.safetensors"));

        // The same computation by hand: conv 3×3 valid + ReLU, flatten, dense.
        var input = Enumerable.Range(0, 16).Select(i => (i * 7 % 11 - 5) * 0.1f).ToArray();
        float[] cw = Enumerable.Range(0, 18).Select(i => (i % 5 - 2) * 0.1f).ToArray(), cb = { 0.1f, -0.2f };
        float[] fw = Enumerable.Range(0, 24).Select(i => (i % 7 - 3) * 0.05f).ToArray(), fb = { 0.01f, 0.02f, 0.03f };
        var hidden = new float[8];
        for (int f = 0; f < 2; f++)
            for (int y = 0; y < 2; y++)
                for (int x = 0; x < 2; x++)
                {
                    float s = cb[f];
                    for (int ky = 0; ky < 3; ky++)
                        for (int kx = 0; kx < 3; kx++) s += cw[f * 9 + ky * 3 + kx] * input[(y + ky) * 4 + x + kx];
                    hidden[f * 4 + y * 2 + x] = Math.Max(s, 0);
                }
        var expected = new float[3];
        for (int u = 0; u < 3; u++) { expected[u] = fb[u]; for (int i = 0; i < 8; i++) expected[u] += fw[u * 8 + i] * hidden[i]; }
        var actual = new float[3];
        net.Forward(input, actual);
        for (int u = 0; u < 3; u++) Assert.True(Math.Abs(expected[u] - actual[u]) <= 1e-6, $"output {u}: {actual[u]} vs {expected[u]}");
    }
}

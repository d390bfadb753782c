using System;
using System.Linq;
using Google.Protobuf;
using Unrolled.Formats.Onnx.Proto;

namespace Unrolled.Tests.Onnx;

/// <summary>Small ONNX models built by hand for the importer's bad-input tests: a valid one, then mutated.</summary>
internal static class OnnxModels
{
    /// <summary>input [N, 1, 4, 4] → Conv c (2 filters 3×3) → Relu → Flatten → Gemm fc (3 units, transB) → output.</summary>
    public static ModelProto Small(int opset = 13)
    {
        var g = new GraphProto { Name = "small" };
        g.Input.Add(Value("input", -1, 1, 4, 4));
        g.Output.Add(Value("output", -1, 3));
        g.Initializer.Add(Floats("c.weight", Enumerable.Range(0, 18).Select(i => (i % 5 - 2) * 0.1f).ToArray(), 2, 1, 3, 3));
        g.Initializer.Add(Floats("c.bias", new[] { 0.1f, -0.2f }, 2));
        g.Initializer.Add(Floats("fc.weight", Enumerable.Range(0, 24).Select(i => (i % 7 - 3) * 0.05f).ToArray(), 3, 8));
        g.Initializer.Add(Floats("fc.bias", new[] { 0.01f, 0.02f, 0.03f }, 3));
        g.Node.Add(Node("Conv", "c", new[] { "input", "c.weight", "c.bias" }, new[] { "c_out" }, Ints("kernel_shape", 3, 3)));
        g.Node.Add(Node("Relu", "relu", new[] { "c_out" }, new[] { "r_out" }));
        g.Node.Add(Node("Flatten", "flat", new[] { "r_out" }, new[] { "f_out" }, Int("axis", 1)));
        g.Node.Add(Node("Gemm", "fc", new[] { "f_out", "fc.weight", "fc.bias" }, new[] { "output" }, Int("transB", 1)));
        var m = new ModelProto { IrVersion = 7, ProducerName = "test", Graph = g };
        m.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = opset });
        return m;
    }

    public static byte[] Bytes(ModelProto m) => m.ToByteArray();

    public static ValueInfoProto Value(string name, params long[] dims)
    {
        var t = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float, Shape = new TensorShapeProto() };
        foreach (long d in dims)
            t.Shape.Dim.Add(d < 0 ? new TensorShapeProto.Types.Dimension { DimParam = "N" } : new TensorShapeProto.Types.Dimension { DimValue = d });
        return new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = t } };
    }

    public static TensorProto Floats(string name, float[] values, params long[] dims)
    {
        var t = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Float };
        t.Dims.AddRange(dims);
        var bytes = new byte[values.Length * 4];
        for (int i = 0; i < values.Length; i++) System.Buffers.Binary.BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(i * 4), values[i]);
        t.RawData = ByteString.CopyFrom(bytes);
        return t;
    }

    public static NodeProto Node(string op, string name, string[] inputs, string[] outputs, params AttributeProto[] attributes)
    {
        var n = new NodeProto { OpType = op, Name = name };
        n.Input.AddRange(inputs);
        n.Output.AddRange(outputs);
        n.Attribute.AddRange(attributes);
        return n;
    }

    public static AttributeProto Int(string name, long v) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = v };

    public static AttributeProto Ints(string name, params long[] v)
    {
        var a = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
        a.Ints.AddRange(v);
        return a;
    }

    public static NodeProto Find(ModelProto m, string name) => m.Graph.Node.First(n => n.Name == name);
}

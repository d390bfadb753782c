// unrolled import model.onnx --class Name [--namespace N] [--out DIR]; see OnnxImportCommand.HelpText.
return Unrolled.OnnxImportCommand.Run(args, System.Console.Out, System.Console.Error);

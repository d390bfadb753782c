using System.Collections.Immutable;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Diagnostics;

namespace Unrolled.Generator;

/// <summary>UNR0009: layer attributes on a class that has no [Network] attribute generate nothing; say so.</summary>
[DiagnosticAnalyzer(LanguageNames.CSharp)]
public sealed class LayerWithoutNetworkAnalyzer : DiagnosticAnalyzer
{
    public override ImmutableArray<DiagnosticDescriptor> SupportedDiagnostics => ImmutableArray.Create(Diagnostics.LayerWithoutNetwork);

    public override void Initialize(AnalysisContext context)
    {
        context.ConfigureGeneratedCodeAnalysis(GeneratedCodeAnalysisFlags.None);
        context.EnableConcurrentExecution();
        context.RegisterSymbolAction(Analyze, SymbolKind.NamedType);
    }

    private static void Analyze(SymbolAnalysisContext context)
    {
        var type = (INamedTypeSymbol)context.Symbol;
        AttributeData? firstLayer = null;
        foreach (AttributeData a in type.GetAttributes())
        {
            if (a.AttributeClass?.ToDisplayString() == Parser.NetworkAttributeName) return;
            if (firstLayer is null && Parser.TryGetLayerKind(a.AttributeClass, out _)) firstLayer = a;
        }
        if (firstLayer?.ApplicationSyntaxReference is { } reference)
        {
            Location location = reference.GetSyntax(context.CancellationToken).GetLocation();
            context.ReportDiagnostic(Diagnostic.Create(Diagnostics.LayerWithoutNetwork, location, type.Name));
        }
    }
}
